"""The wire models as msgspec structs, for the agent process, which must not load pydantic.

``shared.messages`` declares every frame once, as pydantic models; the coordinator validates
and documents them with pydantic. Pydantic and the validators it builds cost the agent about
15 MiB of resident memory, a third of its footprint, to decode a few frames a minute. In the
agent's own process (``python -m agent``, ``berth-agent``) ``shared.wire`` hands out this
module's ``WireModel`` and ``Field`` instead, and each model declaration becomes a frozen
msgspec struct with the same fields, defaults, camelCase wire names and constraints
(``ge``/``gt``/``le``/``lt``, lengths, patterns). The methods the agent calls keep pydantic's
names, so the agent's code runs on either. Only the subset the agent uses is offered, with two
differences the agent does not depend on: input is read by wire names only (pydantic also
takes Python names), and a constructor does not check its values (``checked`` does).
"""

import abc
import types
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin

import msgspec

ValidationError = msgspec.ValidationError
_M = TypeVar("_M")

_CONSTRAINTS = ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern")


class FieldSpec:
    """What a ``Field(...)`` call declared: a default, constraints, or a union's discriminator."""

    __slots__ = ("constraints", "default", "default_factory", "discriminator")

    def __init__(
        self,
        default: Any = msgspec.NODEFAULT,
        *,
        default_factory: Callable[[], Any] | None = None,
        discriminator: str | None = None,
        description: str | None = None,
        **constraints: Any,
    ) -> None:
        unknown = set(constraints) - set(_CONSTRAINTS)
        if unknown:
            # A pydantic option this layer does not mirror would be silently dropped here.
            raise TypeError(f"Field options the lean wire layer does not know: {sorted(unknown)}")
        del description  # documentation only: the coordinator's OpenAPI carries it
        self.default = default
        self.default_factory = default_factory
        self.discriminator = discriminator
        self.constraints = constraints


def Field(default: Any = msgspec.NODEFAULT, **options: Any) -> Any:  # noqa: N802 - pydantic's name
    """Record a field's default, constraints or discriminator (pydantic's ``Field``)."""
    return FieldSpec(default, **options)


class _Discriminated(abc.ABC):
    """Base of the stand-in type for a union of models told apart by one field."""

    field: ClassVar[str]
    members: ClassVar[dict[str, type[Any]]]


def _decode_hook(kind: type[Any], raw: Any) -> Any:
    if issubclass(kind, _Discriminated):
        tag = raw.get(kind.field) if isinstance(raw, dict) else None
        member = kind.members.get(tag) if isinstance(tag, str) else None
        if member is None:
            raise ValueError(f"unknown {kind.field} {tag!r}")  # msgspec adds where
        try:
            return msgspec.convert(raw, member, dec_hook=_decode_hook)
        except ValidationError as exc:
            # Its path starts at the member; raised as a ValueError, msgspec adds the outer one.
            message, _, inner = str(exc).partition(" - at `$")
            where = f" at `{inner}" if inner else ""
            raise ValueError(f"{message}{where} of {kind.field} {tag!r}") from exc
    raise NotImplementedError(f"no decoder for {kind!r}")


def _discriminated(members: tuple[Any, ...], field: str) -> type[_Discriminated]:
    by_tag = {member.model_fields[field].default: member for member in members}
    union: type[_Discriminated] = types.new_class(
        "Discriminated", (_Discriminated,), exec_body=lambda ns: ns.update(field=field)
    )
    union.members = by_tag
    for member in members:
        union.register(member)
    return union


def _rust_anchored(pattern: str) -> str:
    """``pattern`` with a final ``$`` meaning the very end, as in pydantic's (Rust) regex.

    Python's ``$`` also matches before a trailing newline, so ``"id\\n"`` would pass here and
    be refused by the coordinator.
    """
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + r"\Z"
    return pattern


def _constrained(kind: Any, constraints: dict[str, Any]) -> Any:
    """Apply ``constraints`` to ``kind``; in ``X | None`` they bind ``X``, as in pydantic."""
    if not constraints:
        return kind
    if isinstance(constraints.get("pattern"), str):
        constraints = {**constraints, "pattern": _rust_anchored(constraints["pattern"])}
    if get_origin(kind) in (Union, types.UnionType):
        members = tuple(
            _constrained(a, constraints) if a is not type(None) else a for a in get_args(kind)
        )
        return Union[members]  # noqa: UP007 - built at run time from a tuple
    return Annotated[kind, msgspec.Meta(**constraints)]


def lean_type(kind: Any) -> Any:
    """Translate an annotation written for pydantic into one msgspec decodes the same way."""
    origin = get_origin(kind)
    if origin is Annotated:
        base, *extras = get_args(kind)
        specs = [e for e in extras if isinstance(e, FieldSpec)]
        for spec in specs:
            if spec.discriminator is not None:
                return _discriminated(get_args(base), spec.discriminator)
        constraints: dict[str, Any] = {}
        for spec in specs:
            constraints.update(spec.constraints)
        return _constrained(lean_type(base), constraints)
    if origin in (Union, types.UnionType):
        return Union[tuple(lean_type(a) for a in get_args(kind))]  # noqa: UP007 - built at run time
    if origin in (list, dict, tuple, set, frozenset):
        args = get_args(kind)
        return origin[tuple(lean_type(a) for a in args)] if args else kind
    return kind


class _FieldInfo:
    """The part of pydantic's ``FieldInfo`` that Berth reads: the default."""

    __slots__ = ("default",)

    def __init__(self, default: Any) -> None:
        self.default = default


class LeanStruct(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of every lean model: pydantic's method names over msgspec."""

    model_fields: ClassVar[dict[str, _FieldInfo]]

    @classmethod
    def model_validate(cls, data: Any) -> Any:
        """Check ``data`` (wire names, JSON types) and build the model."""
        return msgspec.convert(data, cls, dec_hook=_decode_hook)

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Any:
        """Parse and check JSON text."""
        return msgspec.json.decode(data, type=cls, dec_hook=_decode_hook)

    @classmethod
    def model_construct(cls, **values: Any) -> Any:
        """Build without checking (like pydantic's: the values are trusted)."""
        return cls(**values)

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Any:
        """A copy with ``update`` applied, unchecked (like pydantic's)."""
        return msgspec.structs.replace(self, **(update or {}))

    def model_dump(self, *, mode: str = "python", by_alias: bool = True) -> Any:
        """JSON-ready builtins with wire names, the only dump the agent makes."""
        if mode != "json" or not by_alias:
            raise TypeError("the lean wire layer dumps only mode='json' with wire names")
        return msgspec.to_builtins(self)

    def model_dump_json(self, *, by_alias: bool = True) -> str:
        """JSON text with wire names (``WireModel`` serialises by alias by default too)."""
        if not by_alias:
            raise TypeError("the lean wire layer dumps only wire names")
        return msgspec.json.encode(self).decode()


class _Declaration(type):
    """Turns each ``class X(WireModel)`` body into a msgspec struct with the same fields."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> Any:
        if namespace.get("_declaration_root"):
            return super().__new__(mcls, name, bases, namespace)
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        infos: dict[str, _FieldInfo] = {}
        for base in bases:
            infos.update(getattr(base, "model_fields", {}))
        for field_name, annotation in namespace.get("__annotations__", {}).items():
            default = namespace.get(field_name, msgspec.NODEFAULT)
            kind = lean_type(annotation)
            if isinstance(default, FieldSpec):
                kind = _constrained(kind, default.constraints)
                if default.default_factory is not None:
                    infos[field_name] = _FieldInfo(None)  # pydantic's default is unset too
                    fields.append(
                        (field_name, kind, msgspec.field(default_factory=default.default_factory))
                    )
                    continue
                default = default.default
            infos[field_name] = _FieldInfo(default)
            fields.append(
                (field_name, kind) if default is msgspec.NODEFAULT else (field_name, kind, default)
            )
        kept = {
            key: value
            for key, value in namespace.items()
            if key not in namespace.get("__annotations__", {})
            and key not in ("__annotations__", "__module__", "__qualname__")
        }
        kept["model_fields"] = infos
        struct_bases = tuple(b for b in bases if issubclass(b, LeanStruct))
        return msgspec.defstruct(
            name,
            fields,
            bases=struct_bases or (LeanStruct,),
            module=namespace.get("__module__"),
            namespace=kept,
            kw_only=True,
            frozen=True,
            rename="camel",
        )


class WireModel(metaclass=_Declaration):
    """Declare a model as for pydantic; the class created is a ``LeanStruct``."""

    _declaration_root = True


def dump_json(model: Any) -> str:
    """Serialise a model with its wire names."""
    return msgspec.json.encode(model).decode()


def checked(model: _M) -> _M:
    """``model`` after checking its values against its declaration (raises ``ValidationError``).

    A struct's constructor does not check, where pydantic's does: code that relies on the
    check (a value from outside the agent) asks for it.
    """
    return msgspec.convert(msgspec.to_builtins(model), type(model), dec_hook=_decode_hook)


def list_validator(model: type[Any]) -> Callable[[str | bytes], list[Any]]:
    """A parser of a JSON array of ``model``."""
    kind = list[model]  # type: ignore[valid-type]

    def validate_json(raw: str | bytes) -> list[Any]:
        return msgspec.json.decode(raw, type=kind, dec_hook=_decode_hook)

    return validate_json


def validation_problems(exc: Exception) -> list[dict[str, str]]:
    """Each problem of a failed validation as ``{"loc", "msg"}`` (msgspec reports the first)."""
    text = str(exc)
    message, _, where = text.partition(" - at `$")
    loc = where.rstrip("`").lstrip(".").replace("[", ".").replace("]", "")
    return [{"loc": loc, "msg": message}]
