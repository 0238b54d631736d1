"""Agent enrollment: trade a one-time join token for registration of the agent's public key."""

from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.api.routing import Call, route
from coordinator.api.schemas import EnrollRequest, EnrollResponse
from coordinator.appkeys import REGISTRY_KEY
from coordinator.auth import hash_token
from coordinator.db import models
from shared.crypto import key_fingerprint, parse_public_key
from shared.errors import InvalidRequest, Unauthorized
from shared.version import AGENT_ENROLL_PATH, CLOSE_UNAUTHORIZED, PROTOCOL_VERSION


@route(
    "POST",
    AGENT_ENROLL_PATH,
    summary="Enroll an agent key with a one-time join token",
    tag="agent",
    permission=None,
    body=EnrollRequest,
    response=EnrollResponse,
    status=201,
    errors=(401,),
)
async def enroll(call: Call) -> EnrollResponse:
    """Mark the join token used (exactly once, even under races) and store the public key."""
    body = call.body(EnrollRequest)
    try:
        parse_public_key(body.public_key)
    except ValueError as exc:
        raise InvalidRequest(f"publicKey is invalid: {exc}") from exc
    now = datetime.now(UTC)
    row = await models.JoinToken.get_or_none(token_hash=hash_token(body.join_token))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("join token is not valid")
    if row.used_at is not None:
        raise Unauthorized("join token was already used; mint a new one for this server")
    if row.expires_at <= now:
        raise Unauthorized("join token has expired; mint a new one for this server")
    server = await models.Server.get(id=row.server_id)  # type: ignore[attr-defined]
    if server.lifecycle_status != "active":
        raise Unauthorized("server is deactivated")
    fingerprint = key_fingerprint(body.public_key)
    async with in_transaction():
        # The conditional update is the single-use guarantee: of two racing enrollments with
        # the same token, only one changes a row.
        claimed = await models.JoinToken.filter(id=row.id, used_at=None, revoked_at=None).update(
            used_at=now
        )
        if claimed != 1:
            raise Unauthorized("join token was already used; mint a new one for this server")
        await models.Server.filter(id=server.id).update(
            agent_public_key=body.public_key,
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
            request_id=call.request_id,
        )
    # A re-enrollment replaces the key: any link made with the old key ends now.
    await call.request.app[REGISTRY_KEY].disconnect(
        server.id, CLOSE_UNAUTHORIZED, "agent key was replaced"
    )
    return EnrollResponse(
        server_id=server.id,
        server_name=server.name,
        key_fingerprint=fingerprint,
        protocol=PROTOCOL_VERSION,
    )
