"""The caller's own sessions: list, revoke (ending their streams and terminals), log out."""

from collections.abc import Iterable
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.accounts import session_store
from coordinator.auth import Principal
from coordinator.db import account_models
from coordinator.paging import Page
from coordinator.terminals.token_end import end_token
from coordinator.tokens.api_tokens import Access
from shared.errors import NotFound


async def page(
    actor: Principal, cursor: str | None, limit: int
) -> Page[account_models.AccountSession]:
    """The caller's live sessions (not revoked, not past their absolute expiry), oldest first."""
    rows = account_models.AccountSession.filter(
        user_id=actor.actor_id, revoked_at__isnull=True, expires_at__gt=datetime.now(UTC)
    )
    if cursor:
        rows = rows.filter(id__gt=cursor)
    found = await rows.order_by("id").limit(limit + 1)
    more = len(found) > limit
    found = found[:limit]
    return Page(found, found[-1].id if more and found else None)


async def end_access(
    access: Access,
    session_ids: Iterable[str],
    actor: Principal | None,
    reason: str,
    request_id: str | None,
) -> None:
    """Sessions stopped working: their open streams close and their terminals end now."""
    for session_id in session_ids:
        await end_token(
            access.terminals, session_id, reason=reason, actor=actor, request_id=request_id
        )
        access.streams.end(session_id)


async def revoke(
    actor: Principal, session_id: str, access: Access, request_id: str | None
) -> datetime:
    """Revoke one of the caller's sessions (another user's looks missing); when it was revoked."""
    row = await account_models.AccountSession.get_or_none(id=session_id, user_id=actor.actor_id)
    if row is None:
        raise NotFound("no such session")
    if row.revoked_at is not None:
        return row.revoked_at
    now = datetime.now(UTC)
    async with in_transaction():
        await account_models.AccountSession.filter(id=session_id).update(revoked_at=now)
        await audit.record(
            actor=actor,
            event_type="account.session-revoked",
            aggregate_type="user",
            aggregate_id=actor.actor_id,
            payload={"sessionId": session_id},
            request_id=request_id,
        )
    await end_access(access, [session_id], actor, "session-revoked", request_id)
    return now


async def revoke_all(user_id: str, *, keep: str | None) -> list[str]:
    """Revoke every live session of ``user_id`` except ``keep``; the ids revoked.

    Call inside the transaction of the change that causes it, then ``end_access`` after it.
    """
    rows = account_models.AccountSession.filter(user_id=user_id, revoked_at__isnull=True)
    if keep is not None:
        rows = rows.exclude(id=keep)
    ids = [str(i) for i in await rows.values_list("id", flat=True)]
    if ids:
        await account_models.AccountSession.filter(id__in=ids).update(revoked_at=datetime.now(UTC))
    return ids


def is_current(actor: Principal, row: account_models.AccountSession) -> bool:
    """Whether ``row`` is the session the request came with."""
    return actor.token_id == row.id and session_store.is_session_id(row.id)
