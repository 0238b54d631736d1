"""Model base classes and the JSON encode/decode used on every websocket frame and API body.

Two implementations share one set of declarations (``shared.messages``): pydantic's, in every
process by default, and msgspec structs in the agent (``shared.wire_lean``, chosen by
``shared.wire_mode.use_lean`` in the agent's entry points). Type checkers see pydantic's.
"""

from typing import TYPE_CHECKING, Any

import orjson

from shared import wire_mode

if TYPE_CHECKING or not wire_mode.lean:
    from shared.wire_pydantic import (
        Field,
        ValidationError,
        WireModel,
        checked,
        dump_json,
        list_validator,
        validation_problems,
    )
else:
    from shared.wire_lean import (
        Field,
        ValidationError,
        WireModel,
        checked,
        dump_json,
        list_validator,
        validation_problems,
    )

LEAN = wire_mode.lean
"""Whether this process's models are msgspec structs (the agent) rather than pydantic models."""


def load_json(raw: str | bytes) -> Any:
    """Parse JSON text; raises ``orjson.JSONDecodeError`` (a ``ValueError``) on bad input."""
    return orjson.loads(raw)


__all__ = [
    "LEAN",
    "Field",
    "ValidationError",
    "WireModel",
    "checked",
    "dump_json",
    "list_validator",
    "load_json",
    "validation_problems",
]
