"""Variable storage shared by environments and resources: upsert, delete, list, mask, reveal."""

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final, Literal, NamedTuple

from coordinator.db import models
from coordinator.ids import new_id
from coordinator.secrets import MASK, Keyring
from shared.errors import InvalidRequest
from shared.wire import WireModel

OwnerKind = Literal["environment", "resource"]
Exposure = Literal["build-time", "runtime"]
VariableKind = Literal["plain-config", "secret"]

KEY_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
KEY_MAX_LENGTH: Final = 255
VALUE_MAX_LENGTH: Final = 64 * 1024
_KEY_RE: Final = re.compile(KEY_PATTERN)


class VariableEntry(WireModel):
    """Appaloft's variable entry; ``value`` is ``"****"`` for secrets in every read."""

    key: str
    value: str
    scope: str
    exposure: str
    is_secret: bool
    kind: str
    updated_at: datetime


def binding(owner_kind: str, owner_id: str, key: str, exposure: str) -> str:
    """Associated data that ties a ciphertext to exactly one variable row."""
    return f"variable:{owner_kind}:{owner_id}:{key}:{exposure}"


def valid_key(key: str) -> bool:
    """Whether ``key`` is an acceptable variable name (shell-style, at most 255 chars)."""
    return len(key) <= KEY_MAX_LENGTH and _KEY_RE.fullmatch(key) is not None


def require_valid_key(key: str) -> None:
    """Raise ``InvalidRequest`` naming the rule when ``key`` is not a valid variable name."""
    if not valid_key(key):
        raise InvalidRequest(
            f"invalid variable key {key!r}",
            details={"problems": [{"field": "key", "message": "must match " + KEY_PATTERN}]},
        )


def stores_secret(kind: str, is_secret: bool) -> bool:
    """A variable is secret when flagged so or when its kind is ``secret``."""
    return is_secret or kind == "secret"


async def set_variable(
    keyring: Keyring,
    *,
    owner_kind: OwnerKind,
    owner_id: str,
    key: str,
    value: str,
    exposure: str,
    kind: str,
    is_secret: bool,
) -> None:
    """Insert or replace one variable; a secret is stored only as ciphertext.

    Callers validate ``key``/``value`` first (``valid_key``, ``VALUE_MAX_LENGTH``) and run this
    inside their transaction; a ``ValueError`` here means the caller skipped validation.
    """
    if not valid_key(key):
        raise ValueError(f"invalid variable key {key!r}")
    if len(value.encode("utf-8")) > VALUE_MAX_LENGTH:
        raise ValueError("variable value exceeds 64 KiB")
    secret = stores_secret(kind, is_secret)
    plain = None if secret else value
    sealed = None
    if secret:
        sealed = keyring.encrypt(value, binding(owner_kind, owner_id, key, exposure))
    now = datetime.now(UTC)
    updated = await models.Variable.filter(
        owner_kind=owner_kind, owner_id=owner_id, key=key, exposure=exposure
    ).update(kind=kind, is_secret=secret, value=plain, ciphertext=sealed, updated_at=now)
    if updated:
        return
    _ = await models.Variable.create(
        id=new_id("var"),
        owner_kind=owner_kind,
        owner_id=owner_id,
        key=key,
        exposure=exposure,
        kind=kind,
        is_secret=secret,
        value=plain,
        ciphertext=sealed,
        updated_at=now,
    )


async def delete_variable(owner_kind: str, owner_id: str, key: str, exposure: str) -> bool:
    """Delete one variable; ``False`` when there was none."""
    deleted = await models.Variable.filter(
        owner_kind=owner_kind, owner_id=owner_id, key=key, exposure=exposure
    ).delete()
    return deleted > 0


async def list_variables(owner_kind: str, owner_id: str) -> list[models.Variable]:
    """An owner's variables ordered by key, then exposure."""
    return await models.Variable.filter(owner_kind=owner_kind, owner_id=owner_id).order_by(
        "key", "exposure"
    )


def masked_entry(row: models.Variable, scope: str) -> VariableEntry:
    """The API view of a row: secrets read ``"****"``, never their plaintext."""
    return VariableEntry(
        key=row.key,
        value=MASK if row.is_secret else (row.value or ""),
        scope=scope,
        exposure=row.exposure,
        is_secret=row.is_secret,
        kind=row.kind,
        updated_at=row.updated_at,
    )


def reveal(keyring: Keyring, row: models.Variable) -> str:
    """The plaintext of a row (decrypting secrets); for plan building only, never for reads."""
    if not row.is_secret:
        return row.value or ""
    if row.ciphertext is None:
        raise ValueError(f"secret variable {row.key!r} has no ciphertext")
    return keyring.decrypt(
        row.ciphertext, binding(row.owner_kind, row.owner_id, row.key, row.exposure)
    )


def fingerprint(keyring: Keyring, row: models.Variable) -> str:
    """A digest of a row's setting (kind, secrecy, plaintext) to compare rows without showing it."""
    digest = hashlib.sha256()
    for part in (row.kind, "secret" if row.is_secret else "plain", reveal(keyring, row)):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


async def copy_variables(
    keyring: Keyring,
    *,
    source_kind: OwnerKind,
    source_id: str,
    target_kind: OwnerKind,
    target_id: str,
) -> int:
    """Copy every variable of one owner onto another (secrets re-encrypted for the new rows)."""
    rows = await list_variables(source_kind, source_id)
    for row in rows:
        await set_variable(
            keyring,
            owner_kind=target_kind,
            owner_id=target_id,
            key=row.key,
            value=reveal(keyring, row),
            exposure=row.exposure,
            kind=row.kind,
            is_secret=row.is_secret,
        )
    return len(rows)


class VariableChange(NamedTuple):
    """One ``key`` + ``exposure`` that differs between two owners' variable sets."""

    key: str
    exposure: str
    left: models.Variable | None
    right: models.Variable | None
    change: Literal["added", "removed", "changed"]


def compare(
    keyring: Keyring, left: Iterable[models.Variable], right: Iterable[models.Variable]
) -> list[VariableChange]:
    """Differences from ``left`` to ``right``, ordered by key then exposure.

    ``added``: only on the right; ``removed``: only on the left; ``changed``: kind, secrecy or
    value differ (secrets are compared by a digest of their plaintext, never returned).
    """
    lefts = {(v.key, v.exposure): v for v in left}
    rights = {(v.key, v.exposure): v for v in right}
    changes: list[VariableChange] = []
    for key, exposure in sorted(lefts.keys() | rights.keys()):
        a, b = lefts.get((key, exposure)), rights.get((key, exposure))
        if a is None:
            changes.append(VariableChange(key, exposure, None, b, "added"))
        elif b is None:
            changes.append(VariableChange(key, exposure, a, None, "removed"))
        elif fingerprint(keyring, a) != fingerprint(keyring, b):
            changes.append(VariableChange(key, exposure, a, b, "changed"))
    return changes


__all__ = [
    "KEY_MAX_LENGTH",
    "KEY_PATTERN",
    "VALUE_MAX_LENGTH",
    "Exposure",
    "OwnerKind",
    "VariableChange",
    "VariableEntry",
    "VariableKind",
    "binding",
    "compare",
    "copy_variables",
    "delete_variable",
    "fingerprint",
    "list_variables",
    "masked_entry",
    "require_valid_key",
    "reveal",
    "set_variable",
    "stores_secret",
    "valid_key",
]
