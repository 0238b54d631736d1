"""Model base classes and the JSON encode/decode used on every websocket frame and API body."""

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Base of every model that crosses a process boundary.

    Fields are snake_case in Python and camelCase on the wire, as in the Appaloft reference.
    Unknown fields are ignored so that an older peer accepts a newer peer's additive changes.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        # Validators are built on first use: each side uses only part of the ~100 models,
        # and building all of them up front costs the agent about 14 MiB of RSS.
        defer_build=True,
    )


def dump_json(model: BaseModel) -> str:
    """Serialise a model the one way Berth serialises everything (aliases, JSON types)."""
    return model.model_dump_json(by_alias=True)


def load_json(raw: str | bytes) -> Any:
    """Parse JSON text; raises ``orjson.JSONDecodeError`` (a ``ValueError``) on bad input."""
    return orjson.loads(raw)
