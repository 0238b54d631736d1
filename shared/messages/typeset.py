"""Derive the set of ``type`` values from a message union, so the sets cannot drift from it."""

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin


def message_types(union: Any) -> frozenset[str]:
    """Return the ``type`` discriminator values of every model in ``union``.

    Accepts a bare model, a ``A | B`` union, ``Union[...]``, or an ``Annotated`` wrapper of
    any of these (nested unions are flattened).
    """
    return frozenset(_models(union))


def unsolicited_types(union: Any) -> frozenset[str]:
    """Return the ``type`` values of ``union``'s frames that answer nothing (no ``re`` field).

    These are what a hub listener consumes; a frame with ``re`` is a reply and resolves the
    request that is waiting for it.
    """
    return frozenset(t for t, model in _models(union).items() if "re" not in model.model_fields)


def _models(union: Any) -> dict[str, Any]:
    origin = get_origin(union)
    if origin is Annotated:
        return _models(get_args(union)[0])
    if origin is Union or origin is UnionType:
        found: dict[str, Any] = {}
        for member in get_args(union):
            found.update(_models(member))
        return found
    return {union.model_fields["type"].default: union}
