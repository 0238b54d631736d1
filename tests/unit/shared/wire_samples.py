"""Valid wire values for any pydantic wire model, drawn by hypothesis from its declared fields.

Used to check that the agent's lean wire layer (msgspec structs) reads and writes every model
as pydantic does, without a hand-written example per model.
"""

import importlib
import pkgutil
import types
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

import shared.messages
from shared.errors import ErrorBody

_BOUNDS = ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern")
_INT_LIMIT = 2**62  # frames carry sizes and counters; msgspec's ints are 64-bit


def wire_models() -> dict[str, type[BaseModel]]:
    """Every wire model, by ``module:name``."""
    found: dict[str, type[BaseModel]] = {"shared.errors:ErrorBody": ErrorBody}
    for info in pkgutil.iter_modules(shared.messages.__path__):
        module = importlib.import_module(f"shared.messages.{info.name}")
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
            ):
                found[f"{module.__name__}:{name}"] = value
    return found


def constraints(metadata: list[Any]) -> dict[str, Any]:
    """The bounds, lengths and pattern a field's metadata declares."""
    found: dict[str, Any] = {}
    for item in metadata:
        for key in _BOUNDS:
            value = getattr(item, key, None)
            if value is not None:
                found[key] = value
        if isinstance(item, FieldInfo):
            found.update(constraints(item.metadata))
    return found


def _text(bounds: dict[str, Any]) -> st.SearchStrategy[str]:
    low = bounds.get("min_length", 0)
    high = min(bounds.get("max_length", 24), low + 24)
    if "pattern" in bounds:
        # Search semantics, as pydantic matches a pattern; no newline, which Python's ``$``
        # accepts before the end and pydantic's (Rust) regex does not.
        alphabet = st.characters(codec="utf-8", exclude_characters="\n")
        return st.from_regex(bounds["pattern"], alphabet=alphabet).filter(
            lambda s: low <= len(s) <= bounds.get("max_length", 10**9) and "\n" not in s
        )
    return st.text(min_size=low, max_size=high)


def _number(kind: type, bounds: dict[str, Any]) -> st.SearchStrategy[Any]:
    if kind is int:
        low = bounds.get("ge", bounds["gt"] + 1 if "gt" in bounds else -_INT_LIMIT)
        high = bounds.get("le", bounds["lt"] - 1 if "lt" in bounds else _INT_LIMIT)
        return st.integers(low, high)
    return st.floats(
        bounds.get("ge", bounds.get("gt")),
        bounds.get("le", bounds.get("lt", 1e12)),
        exclude_min="gt" in bounds,
        exclude_max="lt" in bounds,
        allow_nan=False,
        allow_infinity=False,
    )


def values(kind: Any, bounds: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Values pydantic accepts for annotation ``kind`` under ``bounds``."""
    bounds = bounds or {}
    origin = get_origin(kind)
    if origin is Annotated:
        base, *extras = get_args(kind)
        return values(base, {**bounds, **constraints(extras)})
    if origin in (Union, types.UnionType):
        return st.one_of(*(values(a, bounds) for a in get_args(kind)))
    if origin is Literal:
        return st.sampled_from(get_args(kind))
    if origin is list:
        low = bounds.get("min_length", 0)
        high = min(bounds.get("max_length", 3), low + 3)
        return st.lists(values(get_args(kind)[0]), min_size=low, max_size=high)
    if origin is dict:
        key, value = get_args(kind)
        return st.dictionaries(values(key), values(value), max_size=3)
    if kind is type(None):
        return st.none()
    if kind is Any:
        return st.one_of(st.none(), st.integers(-1000, 1000), st.text(max_size=8))
    if kind is bool:
        return st.booleans()
    if kind in (int, float):
        return _number(kind, bounds)
    if kind is str:
        return _text(bounds)
    if kind is datetime:
        return st.datetimes(timezones=st.one_of(st.none(), st.just(UTC)))
    if isinstance(kind, type) and issubclass(kind, Enum):
        return st.sampled_from(list(kind))
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return models(kind)
    if isinstance(kind, type) and hasattr(kind, "__required_keys__"):  # a TypedDict
        hints = get_type_hints(kind, include_extras=True)
        return st.fixed_dictionaries({k: values(v) for k, v in hints.items()})
    raise TypeError(f"no sample values for {kind!r}")


def _deferred(kind: Any, bounds: dict[str, Any]) -> st.SearchStrategy[Any]:
    # Deferred: models nest, and a strategy is built only when hypothesis first draws from it.
    return st.deferred(lambda: values(kind, bounds))


def models(model: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    """Valid instances of ``model``; fields with a default are sometimes left out."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, field in model.model_fields.items():
        kind: Any = field.annotation
        if field.discriminator is not None:
            kind = Annotated[kind, field]
        strategy = _deferred(kind, constraints(field.metadata))
        (required if field.is_required() else optional)[name] = strategy
    return st.fixed_dictionaries(required, optional=optional).map(model.model_validate)
