"""Agent enrollment: trade a one-time join token for registration of the agent's public key."""

from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import hash_token
from coordinator.db import models
from coordinator.hub.registry import Registry
from shared.crypto import key_fingerprint, parse_public_key
from shared.errors import InvalidRequest, Unauthorized
from shared.version import CLOSE_UNAUTHORIZED


async def enroll(
    registry: Registry, join_token: str, public_key: str, request_id: str | None
) -> tuple[models.Server, str]:
    """Mark the join token used (exactly once, even under races) and store the public key.

    The enrolled server and the key's fingerprint.
    """
    try:
        parse_public_key(public_key)
    except ValueError as exc:
        raise InvalidRequest(f"publicKey is invalid: {exc}") from exc
    now = datetime.now(UTC)
    row = await models.JoinToken.get_or_none(token_hash=hash_token(join_token))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("join token is not valid")
    if row.used_at is not None:
        raise Unauthorized("join token was already used; mint a new one for this server")
    if row.expires_at <= now:
        raise Unauthorized("join token has expired; mint a new one for this server")
    server = await models.Server.get(id=row.server_id)  # type: ignore[attr-defined]
    if server.lifecycle_status != "active":
        raise Unauthorized("server is deactivated")
    fingerprint = key_fingerprint(public_key)
    async with in_transaction():
        # The conditional update is the single-use guarantee: of two racing enrollments with
        # the same token, only one changes a row.
        claimed = await models.JoinToken.filter(id=row.id, used_at=None, revoked_at=None).update(
            used_at=now
        )
        if claimed != 1:
            raise Unauthorized("join token was already used; mint a new one for this server")
        await models.Server.filter(id=server.id).update(
            agent_public_key=public_key,
            agent_key_fingerprint=fingerprint,
            agent_enrolled_at=now,
        )
        await audit.record(
            actor=None,
            actor_kind="join-token",
            actor_id=row.id,
            organization_id=server.organization_id,  # type: ignore[attr-defined]
            event_type="server.agent-enrolled",
            aggregate_type="server",
            aggregate_id=server.id,
            payload={
                "keyFingerprint": fingerprint,
                "previousKeyFingerprint": server.agent_key_fingerprint,
            },
            request_id=request_id,
        )
    # A re-enrollment replaces the key: any link made with the old key ends now.
    await registry.disconnect(server.id, CLOSE_UNAUTHORIZED, "agent key was replaced")
    return server, fingerprint
