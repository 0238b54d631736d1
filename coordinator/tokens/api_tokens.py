"""API (deploy) tokens: mint within the caller's own scope, list, rotate, revoke; audited."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import API_TOKEN_PREFIX, Principal, hash_token, mint_token
from coordinator.db import models
from coordinator.ids import new_id
from coordinator.lookup import visible_or_404
from coordinator.paging import Page
from coordinator.terminals.hub import TerminalHub
from coordinator.terminals.token_end import end_token
from coordinator.token_scope import Bounds, excess, within
from coordinator.token_streams import TokenStreams
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound

# Rows read per query while filling a page of the tokens the caller may see.
_LIST_BATCH: Final = 200


@dataclass(frozen=True)
class Minted:
    """A new token row and its plaintext, which is shown exactly once."""

    row: models.ApiToken
    token: str


@dataclass(frozen=True)
class Access:
    """What a token's secret opens besides requests: terminal sessions and open streams."""

    terminals: TerminalHub
    streams: TokenStreams


def check_organization(actor: Principal, organization_id: str | None) -> None:
    """An explicit organization id must be the caller's own (another looks missing)."""
    if organization_id is not None and organization_id != actor.organization_id:
        raise NotFound(f"organization {organization_id!r} not found")


def _check_within(actor: Principal, scope: dict[str, Any], expires_at: datetime | None) -> None:
    """A token may only mint tokens within its own scope, in every dimension (see token_scope)."""
    beyond = excess(Bounds.of(scope, expires_at), actor.bounds)
    if beyond:
        raise Forbidden(
            "a token can only create tokens within its own scope "
            f"(this one would reach beyond it in: {', '.join(beyond)})",
            details={"beyondScope": beyond},
        )


def _visible(actor: Principal, row: models.ApiToken) -> bool:
    """Tokens wider than the caller's own look absent to it: it may not see, rotate or revoke
    them (a token is always within itself)."""
    return within(Bounds.of(row.scope, row.expires_at), actor.bounds)


async def get(actor: Principal, token_id: str) -> models.ApiToken:
    """A token of the caller's organization no wider than the caller's own, else 404."""
    return await visible_or_404(
        models.ApiToken,
        "deploy token",
        token_id,
        lambda row: _visible(actor, row),
        organization_id=actor.organization_id,
    )


async def mint(
    actor: Principal,
    *,
    display_name: str,
    scope: dict[str, Any],
    expires_at: datetime | None,
    request_id: str | None,
) -> Minted:
    """Mint a token with ``scope`` (JSON form), which must lie within the caller's own."""
    if expires_at is not None and expires_at.tzinfo is None:
        # A time without an offset cannot be compared with the caller's own expiry (or now).
        raise InvalidRequest(
            "expiresAt needs a timezone offset (e.g. 'Z')",
            details={"problems": [{"field": "expiresAt", "message": "timezone offset missing"}]},
        )
    _check_within(actor, scope, expires_at)
    now = datetime.now(UTC)
    if expires_at is not None and expires_at <= now:
        raise InvalidRequest("expiresAt must be in the future")
    token = mint_token(API_TOKEN_PREFIX)
    token_id = new_id("tok")
    async with in_transaction():
        row = await models.ApiToken.create(
            id=token_id,
            organization_id=actor.organization_id,
            user_id=None,
            # The minting user (a session's, or its token's creator): the token is cut back
            # when that user's role shrinks or it leaves (coordinator/organizations/members.py).
            created_by_user_id=actor.actor_id if actor.actor_id != actor.token_id else None,
            display_name=display_name,
            token_hash=hash_token(token),
            secret_suffix=token[-4:],
            scope=scope,
            status="active",
            created_at=now,
            expires_at=expires_at,
        )
        await audit.record(
            actor=actor,
            event_type="deploy-token.created",
            aggregate_type="deploy-token",
            aggregate_id=token_id,
            payload={"displayName": display_name, "scope": scope},
            request_id=request_id,
        )
    return Minted(row, token)


async def page(
    actor: Principal, status: str | None, cursor: str | None, limit: int
) -> Page[models.ApiToken]:
    """The tokens the caller may see, oldest first."""
    rows = models.ApiToken.filter(organization_id=actor.organization_id)
    if status is not None:
        rows = rows.filter(status=status)
    # Tokens wider than the caller are left out, so a page is filled batch by batch.
    found: list[models.ApiToken] = []
    more = False
    while True:
        batch_query = rows.filter(id__gt=cursor) if cursor else rows
        batch = await batch_query.order_by("id").limit(_LIST_BATCH)
        for row in batch:
            if not _visible(actor, row):
                continue
            if len(found) == limit:
                more = True
                break
            found.append(row)
        if more or len(batch) < _LIST_BATCH:
            break
        cursor = batch[-1].id
    return Page(found, found[-1].id if more and found else None)


async def _end_access(
    access: Access, token_id: str, reason: str, actor: Principal, request_id: str | None
) -> None:
    """The token's secret no longer works: its terminal sessions end, its tickets die and its
    open streams close (each was authorized only when it opened)."""
    await end_token(access.terminals, token_id, reason=reason, actor=actor, request_id=request_id)
    access.streams.end(token_id)


async def rotate(
    actor: Principal, token_id: str, access: Access, request_id: str | None
) -> tuple[models.ApiToken, str, datetime]:
    """Replace the token's secret; the old plaintext stops working immediately.

    The row (as before), the new plaintext and when it was rotated.
    """
    row = await get(actor, token_id)
    if row.status != "active":
        raise Conflict("a revoked token cannot be rotated")
    token = mint_token(API_TOKEN_PREFIX)
    now = datetime.now(UTC)
    async with in_transaction():
        await models.ApiToken.filter(id=token_id).update(
            token_hash=hash_token(token), secret_suffix=token[-4:], rotated_at=now
        )
        await audit.record(
            actor=actor,
            event_type="deploy-token.rotated",
            aggregate_type="deploy-token",
            aggregate_id=token_id,
            request_id=request_id,
        )
    await _end_access(access, token_id, "token-rotated", actor, request_id)
    return row, token, now


async def revoke(
    actor: Principal, token_id: str, access: Access, request_id: str | None
) -> datetime:
    """Revoke the token for good (revoking twice changes nothing); when it was revoked."""
    # Revoking is as sensitive as minting: a narrow token must not cut off a wider one (say,
    # the admin's), which get() hides. Any token may revoke itself.
    row = await get(actor, token_id)
    if row.status == "revoked" and row.revoked_at is not None:
        return row.revoked_at
    now = datetime.now(UTC)
    async with in_transaction():
        await models.ApiToken.filter(id=token_id).update(status="revoked", revoked_at=now)
        await audit.record(
            actor=actor,
            event_type="deploy-token.revoked",
            aggregate_type="deploy-token",
            aggregate_id=token_id,
            request_id=request_id,
        )
    await _end_access(access, token_id, "token-revoked", actor, request_id)
    return now
