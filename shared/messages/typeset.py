"""Derive the set of ``type`` values from a message union, so the sets cannot drift from it."""

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin


def message_types(union: Any) -> frozenset[str]:
    """Return the ``type`` discriminator values of every model in ``union``.

    Accepts a bare model, a ``A | B`` union, ``Union[...]``, or an ``Annotated`` wrapper of
    any of these (nested unions are flattened).
    """
    origin = get_origin(union)
    if origin is Annotated:
        return message_types(get_args(union)[0])
    if origin is Union or origin is UnionType:
        return frozenset().union(*(message_types(member) for member in get_args(union)))
    return frozenset({union.model_fields["type"].default})
