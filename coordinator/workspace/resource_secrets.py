"""Resource secrets: create, rotate and delete (encrypted at rest, audited), and masked reads."""

from tortoise.transactions import in_transaction

from coordinator import variables
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.lookup import get_resource
from coordinator.secrets import Keyring
from coordinator.workspace.mutability import current_resource
from coordinator.workspace.resources import SCOPE, record
from shared.errors import Conflict, NotFound


async def _secret_row(resource_id: str, key: str, exposure: str) -> models.Variable:
    row = await models.Variable.get_or_none(
        owner_kind=SCOPE, owner_id=resource_id, key=key, exposure=exposure, is_secret=True
    )
    if row is None:
        raise NotFound(f"secret {key!r} ({exposure}) not found on this resource")
    return row


async def _store(keyring: Keyring, resource_id: str, key: str, value: str, exposure: str) -> None:
    """Write the secret's value, encrypted by the Keyring (a create or a rotation)."""
    await variables.set_variable(
        keyring,
        owner_kind=SCOPE,
        owner_id=resource_id,
        key=key,
        value=value,
        exposure=exposure,
        kind="secret",
        is_secret=True,
    )


async def listed(
    actor: Principal, resource_id: str, exposure: str
) -> tuple[str, list[models.Variable]]:
    """The resource's id and its secrets for one exposure, by key."""
    row = await get_resource(actor, resource_id)
    rows = await models.Variable.filter(
        owner_kind=SCOPE, owner_id=row.id, exposure=exposure, is_secret=True
    ).order_by("key")
    return row.id, rows


async def one(
    actor: Principal, resource_id: str, key: str, exposure: str
) -> tuple[str, models.Variable]:
    """The resource's id and its secret ``key`` for ``exposure``, else 404."""
    row = await get_resource(actor, resource_id)
    return row.id, await _secret_row(row.id, key, exposure)


async def create(
    actor: Principal,
    keyring: Keyring,
    resource_id: str,
    key: str,
    value: str,
    exposure: str,
    request_id: str | None,
) -> str:
    """Create a secret; an existing variable with the same key and exposure is a conflict.
    The resource's id."""
    row = await get_resource(actor, resource_id)
    async with in_transaction():
        _ = await current_resource(row.id)
        if await models.Variable.exists(
            owner_kind=SCOPE, owner_id=row.id, key=key, exposure=exposure
        ):
            raise Conflict(
                f"{key!r} ({exposure}) already exists on this resource; rotate it instead",
                details={"key": key, "exposure": exposure},
            )
        await _store(keyring, row.id, key, value, exposure)
        await record(actor, "secret-created", row.id, request_id, key=key, exposure=exposure)
    return row.id


async def rotate(
    actor: Principal,
    keyring: Keyring,
    resource_id: str,
    key: str,
    value: str,
    exposure: str,
    request_id: str | None,
) -> str:
    """Replace the value of an existing secret (re-encrypted with the active key)."""
    row = await get_resource(actor, resource_id)
    async with in_transaction():
        _ = await current_resource(row.id)
        _ = await _secret_row(row.id, key, exposure)
        await _store(keyring, row.id, key, value, exposure)
        await record(actor, "secret-rotated", row.id, request_id, key=key, exposure=exposure)
    return row.id


async def delete(
    actor: Principal, resource_id: str, key: str, exposure: str, request_id: str | None
) -> str:
    """Delete the secret ``key`` for ``exposure``. The resource's id."""
    row = await get_resource(actor, resource_id)
    async with in_transaction():
        _ = await current_resource(row.id)
        secret = await _secret_row(row.id, key, exposure)
        await models.Variable.filter(id=secret.id).delete()
        await record(actor, "secret-deleted", row.id, request_id, key=key, exposure=exposure)
    return row.id
