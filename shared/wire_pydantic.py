"""The pydantic wire layer: what every process but the agent declares its models with."""

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

_M = TypeVar("_M", bound=BaseModel)


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


def checked(model: _M) -> _M:
    """``model``, already checked by its constructor (the lean layer checks here)."""
    return model


def list_validator(model: type[Any]) -> Callable[[str | bytes], list[Any]]:
    """A parser of a JSON array of ``model``."""
    return TypeAdapter(list[model]).validate_json  # type: ignore[valid-type]


def validation_problems(exc: ValidationError) -> list[dict[str, str]]:
    """Each problem of a failed validation as ``{"loc", "msg"}``."""
    return [
        {"loc": ".".join(str(p) for p in err["loc"]), "msg": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


__all__ = [
    "Field",
    "ValidationError",
    "WireModel",
    "dump_json",
    "list_validator",
    "validation_problems",
]
