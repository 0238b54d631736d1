"""Pytest plugin (``-p tests.lean_wire``): run on the agent's lean wire layer, as its process does.

``berth-agent`` declares the wire models as msgspec structs (``shared/wire_lean.py``), chosen
before anything imports ``shared.wire``; a plugin named with ``-p`` loads before any test
module, so the agent's unit tests run on that layer too (``scripts/test.sh``). The coordinator
cannot run on it, hence ``--confcutdir=tests/unit/agent`` beside this plugin.
"""

from shared import wire_mode

# Raises if anything loaded shared.wire (pydantic's layer) first, so the pass cannot be moot.
wire_mode.use_lean()
