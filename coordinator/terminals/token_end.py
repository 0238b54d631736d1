"""Terminal access ends with its API token: revoking, rotating or the expiry of the token that
opened a session closes the session, voids the tickets issued through the token, and says so in
the audit trail."""

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from coordinator import audit
from coordinator.auth import Principal
from coordinator.terminals.session import TerminalSession
from shared.errors import Unauthorized

if TYPE_CHECKING:
    from coordinator.terminals.hub import TerminalHub

logger = logging.getLogger(__name__)


async def end_token(
    hub: "TerminalHub",
    token_id: str,
    *,
    reason: str,
    actor: Principal | None = None,
    request_id: str | None = None,
) -> list[TerminalSession]:
    """API token ``token_id`` stopped working (revoked, rotated, expired): close the sessions it
    opened and void the tickets issued through it; return the sessions closed."""
    voided = hub.tickets.revoke_token(token_id)
    ended = [s for s in hub.sessions() if s.token_id == token_id and s.status != "closed"]
    error = Unauthorized(f"the API token that opened this terminal session is gone ({reason})")
    for found in ended:
        await hub.close(found, reason=reason, error=error, actor=actor, request_id=request_id)
    if not ended and not voided:
        return []
    try:
        await audit.record(
            actor=actor,
            organization_id=ended[0].organization_id if ended else None,
            event_type="deploy-token.terminal-access-ended",
            aggregate_type="deploy-token",
            aggregate_id=token_id,
            payload={
                "reason": reason,
                "closedSessionIds": [s.session_id for s in ended],
                "voidedTickets": voided,
            },
            request_id=request_id,
        )
    except Exception:
        logger.exception("could not record the end of token %s's terminal access", token_id)
    return ended


async def end_expired_tokens(hub: "TerminalHub") -> list[TerminalSession]:
    """Sessions whose opening token has expired end now (the hub's sweep calls this)."""
    now = datetime.now(UTC)
    expired = {
        s.token_id
        for s in hub.sessions()
        if s.status != "closed" and s.token_expires_at is not None and s.token_expires_at <= now
    }
    ended: list[TerminalSession] = []
    for token_id in sorted(t for t in expired if t is not None):
        ended += await end_token(hub, token_id, reason="token-expired")
    return ended
