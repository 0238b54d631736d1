"""Pytest plugin (``-p tests.lean_wire``): run on the agent's lean wire layer, as its process does.

``berth-agent`` declares the wire models as msgspec structs (``shared/wire_lean.py``), chosen
before anything imports ``shared.wire``; a plugin named with ``-p`` loads before any test
module, so the agent's unit tests run on that layer too (``scripts/test.sh``). The coordinator
cannot run on it, hence ``--confcutdir=tests/unit/agent`` beside this plugin.
"""

import pytest

from shared import wire_mode

wire_mode.use_lean()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to run if something imported the pydantic layer first (the pass would be moot)."""
    import shared.wire

    if not shared.wire.LEAN:
        raise pytest.UsageError("tests.lean_wire: shared.wire was loaded on pydantic's layer")
