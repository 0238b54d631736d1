"""Which wire layer this process uses: pydantic (the default) or the agent's lean structs."""

import sys

lean = False
"""Read once, when ``shared.wire`` is first imported."""


def use_lean() -> None:
    """Make this process declare its wire models as msgspec structs (the agent's entry points).

    Must run before anything imports ``shared.wire``: models already declared with pydantic
    cannot change, and one process with both kinds would mix them.
    """
    global lean
    if "shared.wire" in sys.modules and not lean:
        raise RuntimeError("shared.wire was imported before the lean wire layer was selected")
    lean = True
