"""Join tokens: one-time secrets an agent enrolls its key with."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from coordinator.auth import JOIN_TOKEN_PREFIX, hash_token, mint_token
from coordinator.db import models
from coordinator.ids import new_id


@dataclass(frozen=True)
class JoinToken:
    """A freshly minted join token: its plaintext (shown once) and when it expires."""

    server_id: str
    token: str
    expires_at: datetime


async def issue(server_id: str, ttl_seconds: int) -> JoinToken:
    """Mint a join token (earlier unused ones are revoked); the caller holds the transaction."""
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_seconds)
    token = mint_token(JOIN_TOKEN_PREFIX)
    await models.JoinToken.filter(server_id=server_id, used_at=None, revoked_at=None).update(
        revoked_at=now
    )
    _ = await models.JoinToken.create(
        id=new_id("jtk"),
        server_id=server_id,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=expires,
    )
    return JoinToken(server_id, token, expires)


async def revoke_unused(server_id: str, now: datetime) -> None:
    """Revoke the server's unused join tokens; the caller holds the transaction."""
    await models.JoinToken.filter(server_id=server_id, used_at=None, revoked_at=None).update(
        revoked_at=now
    )
