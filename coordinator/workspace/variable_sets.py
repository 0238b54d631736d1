"""Variable sets: setting and removing an environment's or a resource's variables, audited."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from coordinator import audit, variables
from coordinator.auth import Principal
from coordinator.secrets import Keyring
from coordinator.variables import OwnerKind
from shared.errors import NotFound


@dataclass(frozen=True)
class Owner:
    """Whose variables: ``lock`` re-reads the owner inside the transaction and raises when it
    may not change now (locked, archived, its project archived); ``where`` ends a not-found
    message ("in this environment")."""

    kind: OwnerKind
    id: str
    lock: Callable[[str], Awaitable[Any]]
    where: str


async def _record(
    actor: Principal, owner: Owner, event: str, request_id: str | None, **payload: object
) -> None:
    await audit.record(
        actor=actor,
        event_type=f"{owner.kind}.{event}",
        aggregate_type=owner.kind,
        aggregate_id=owner.id,
        payload=payload,
        request_id=request_id,
    )


async def set_variable(
    actor: Principal,
    owner: Owner,
    keyring: Keyring,
    *,
    key: str,
    value: str,
    exposure: str,
    kind: str,
    is_secret: bool,
    request_id: str | None,
) -> None:
    """Insert or replace the variable named by ``key`` + ``exposure`` (secrets encrypted)."""
    async with in_transaction():
        await owner.lock(owner.id)
        await variables.set_variable(
            keyring,
            owner_kind=owner.kind,
            owner_id=owner.id,
            key=key,
            value=value,
            exposure=exposure,
            kind=kind,
            is_secret=is_secret,
        )
        await _record(
            actor,
            owner,
            "variable-set",
            request_id,
            key=key,
            exposure=exposure,
            kind=kind,
            isSecret=variables.stores_secret(kind, is_secret),
        )


async def delete_variable(
    actor: Principal, owner: Owner, *, key: str, exposure: str, request_id: str | None
) -> None:
    """Delete the variable named by ``key`` + ``exposure``; ``NotFound`` when there is none."""
    async with in_transaction():
        await owner.lock(owner.id)
        if not await variables.delete_variable(owner.kind, owner.id, key, exposure):
            raise NotFound(f"variable {key!r} ({exposure}) not found {owner.where}")
        await _record(actor, owner, "variable-deleted", request_id, key=key, exposure=exposure)
