"""The server inventory: register, rename, deactivate, delete, rotate keys; audited."""

from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.hub.registry import Registry
from coordinator.ids import new_id
from coordinator.lookup import get_server
from coordinator.paging import Page, page_after
from coordinator.server_roster import ServerRoster
from coordinator.servers import join_tokens
from coordinator.servers.join_tokens import JoinToken
from shared.errors import Conflict, InvalidRequest
from shared.version import CLOSE_UNAUTHORIZED


def _visible(actor: Principal) -> QuerySet[models.Server]:
    rows = models.Server.filter(organization_id=actor.organization_id)
    if actor.server_ids:
        rows = rows.filter(id__in=list(actor.server_ids))
    return rows


def _duplicate(name: str) -> Conflict:
    return Conflict(f"a server named {name!r} already exists")


async def register(
    actor: Principal,
    *,
    name: str,
    host: str | None,
    port: int | None,
    provider_key: str | None,
    ttl_seconds: int,
    roster: ServerRoster,
    request_id: str | None,
) -> JoinToken:
    """Register a server and mint the join token its agent enrolls with."""
    if actor.server_ids:
        raise InvalidRequest("a server-scoped token cannot register new servers")
    server_id = new_id("srv")
    try:
        async with in_transaction():
            _ = await models.Server.create(
                id=server_id,
                organization_id=actor.organization_id,
                name=name,
                host=host,
                port=port,
                provider_key=provider_key or "berth-agent",
                created_at=datetime.now(UTC),
            )
            issued = await join_tokens.issue(server_id, ttl_seconds)
            await audit.record(
                actor=actor,
                event_type="server.registered",
                aggregate_type="server",
                aggregate_id=server_id,
                payload={"name": name, "host": host},
                request_id=request_id,
            )
    except IntegrityError as exc:
        raise _duplicate(name) from exc
    roster.changed(actor.organization_id)
    return issued


async def page(actor: Principal, cursor: str | None, limit: int) -> Page[models.Server]:
    """The servers the caller may see, oldest first."""
    return await page_after(_visible(actor), cursor, limit)


async def count(actor: Principal) -> int:
    """How many servers the caller may see."""
    return await _visible(actor).count()


async def rename(
    actor: Principal, server_id: str, name: str, request_id: str | None
) -> models.Server:
    """Change the display name; the id and the agent link are unaffected."""
    row = await get_server(actor, server_id)
    try:
        async with in_transaction():
            await models.Server.filter(id=row.id).update(name=name)
            await audit.record(
                actor=actor,
                event_type="server.renamed",
                aggregate_type="server",
                aggregate_id=row.id,
                payload={"from": row.name, "to": name},
                request_id=request_id,
            )
    except IntegrityError as exc:
        raise _duplicate(name) from exc
    return row


async def deactivate(
    actor: Principal,
    server_id: str,
    reason: str | None,
    registry: Registry,
    request_id: str | None,
) -> models.Server:
    """Mark the server inactive, revoke its join tokens and close the agent link at once."""
    row = await get_server(actor, server_id)
    if row.lifecycle_status != "inactive":
        now = datetime.now(UTC)
        async with in_transaction():
            await models.Server.filter(id=row.id).update(
                lifecycle_status="inactive", deactivated_at=now, deactivation_reason=reason
            )
            await join_tokens.revoke_unused(row.id, now)
            await audit.record(
                actor=actor,
                event_type="server.deactivated",
                aggregate_type="server",
                aggregate_id=row.id,
                payload={"reason": reason},
                request_id=request_id,
            )
    await registry.disconnect(row.id, CLOSE_UNAUTHORIZED, "server is deactivated")
    return row


def blocks_deletion(row: models.Server) -> bool:
    """Only an inactive server can be deleted."""
    return row.lifecycle_status == "active"


async def delete(
    actor: Principal,
    server_id: str,
    confirmed_id: str,
    *,
    registry: Registry,
    roster: ServerRoster,
    request_id: str | None,
) -> models.Server:
    """Delete an inactive server after confirmation; the agent's key is forgotten with the row."""
    row = await get_server(actor, server_id)
    if confirmed_id != row.id:
        raise InvalidRequest("confirmation.serverId must equal the server being deleted")
    if blocks_deletion(row):
        raise Conflict(
            "deactivate the server before deleting it",
            details={
                "blockers": [
                    {
                        "kind": "active-server",
                        "relatedEntityId": row.id,
                        "relatedEntityType": "server",
                        "count": 1,
                    }
                ]
            },
        )
    async with in_transaction():
        await models.Server.filter(id=row.id).delete()
        await audit.record(
            actor=actor,
            event_type="server.deleted",
            aggregate_type="server",
            aggregate_id=row.id,
            payload={"name": row.name},
            request_id=request_id,
        )
    roster.changed(actor.organization_id)
    await registry.disconnect(row.id, CLOSE_UNAUTHORIZED, "server was deleted")
    return row


async def issue_join_token(
    actor: Principal, server_id: str, ttl_seconds: int, request_id: str | None
) -> JoinToken:
    """A fresh join token (e.g. the first one expired); the current key stays valid."""
    row = await get_server(actor, server_id)
    if row.lifecycle_status != "active":
        raise Conflict("server is deactivated")
    async with in_transaction():
        issued = await join_tokens.issue(row.id, ttl_seconds)
        await audit.record(
            actor=actor,
            event_type="server.join-token-issued",
            aggregate_type="server",
            aggregate_id=row.id,
            request_id=request_id,
        )
    return issued


async def rotate_agent_key(
    actor: Principal,
    server_id: str,
    ttl_seconds: int,
    registry: Registry,
    request_id: str | None,
) -> JoinToken:
    """Forget the enrolled key, close the link, and mint a join token for re-enrollment."""
    row = await get_server(actor, server_id)
    if row.lifecycle_status != "active":
        raise Conflict("server is deactivated")
    async with in_transaction():
        await models.Server.filter(id=row.id).update(
            agent_public_key=None, agent_key_fingerprint=None
        )
        issued = await join_tokens.issue(row.id, ttl_seconds)
        await audit.record(
            actor=actor,
            event_type="server.agent-key-revoked",
            aggregate_type="server",
            aggregate_id=row.id,
            payload={"previousKeyFingerprint": row.agent_key_fingerprint},
            request_id=request_id,
        )
    await registry.disconnect(row.id, CLOSE_UNAUTHORIZED, "agent key was revoked")
    return issued
