"""Deploy-token routes: create, list, show, rotate, revoke. Plaintext is shown exactly once."""

from datetime import UTC, datetime
from typing import Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.api.routing import Call, route
from coordinator.api.schemas import (
    CreateDeployTokenRequest,
    CreateDeployTokenResponse,
    DeployTokenItem,
    DeployTokenList,
    ListDeployTokensQuery,
    OrganizationQuery,
    RevokeDeployTokenResponse,
    RotateDeployTokenResponse,
    TokenCommandRequest,
    TokenScope,
)
from coordinator.auth import API_TOKEN_PREFIX, Principal, hash_token, mint_token
from coordinator.db import models
from coordinator.ids import new_id
from coordinator.terminals import TERMINALS_KEY
from coordinator.terminals.token_end import end_token
from coordinator.token_scope import Bounds, excess, within
from coordinator.token_streams import TOKEN_STREAMS_KEY
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound

# Rows read per query while filling a page of the tokens the caller may see.
_LIST_BATCH: Final = 200


def _item(row: models.ApiToken) -> DeployTokenItem:
    return DeployTokenItem(
        token_id=row.id,
        organization_id=row.organization_id,  # type: ignore[attr-defined]
        display_name=row.display_name,
        status="revoked" if row.status == "revoked" else "active",
        secret_suffix=row.secret_suffix,
        scope=TokenScope.model_validate(row.scope),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        rotated_at=row.rotated_at,
        revoked_at=row.revoked_at,
    )


def _check_organization(actor: Principal, organization_id: str | None) -> None:
    if organization_id is not None and organization_id != actor.organization_id:
        raise NotFound(f"organization {organization_id!r} not found")


def _check_within(actor: Principal, scope: TokenScope, expires_at: datetime | None) -> None:
    """A token may only mint tokens within its own scope, in every dimension (see token_scope)."""
    beyond = excess(Bounds.of(scope.model_dump(mode="json"), expires_at), actor.bounds)
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


async def _get(actor: Principal, token_id: str) -> models.ApiToken:
    row = await models.ApiToken.get_or_none(id=token_id, organization_id=actor.organization_id)
    if row is None or not _visible(actor, row):
        raise NotFound(f"deploy token {token_id!r} not found")
    return row


async def _end_access(call: Call, token_id: str, reason: str) -> None:
    """The token's secret no longer works: its terminal sessions end, its tickets die and its
    open streams close (each was authorized only when it opened)."""
    await end_token(
        call.request.app[TERMINALS_KEY],
        token_id,
        reason=reason,
        actor=call.actor,
        request_id=call.request_id,
    )
    call.request.app[TOKEN_STREAMS_KEY].end(token_id)


@route(
    "POST",
    "/deploy-tokens",
    summary="Create an API token (plaintext shown once)",
    tag="deploy-tokens",
    permission="deploy-tokens:write",
    body=CreateDeployTokenRequest,
    response=CreateDeployTokenResponse,
    status=201,
)
async def create(call: Call) -> CreateDeployTokenResponse:
    """Mint a token with the requested scope."""
    body = call.body(CreateDeployTokenRequest)
    actor = call.actor
    _check_organization(actor, body.organization_id)
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        # A time without an offset cannot be compared with the caller's own expiry (or now).
        raise InvalidRequest(
            "expiresAt needs a timezone offset (e.g. 'Z')",
            details={"problems": [{"field": "expiresAt", "message": "timezone offset missing"}]},
        )
    _check_within(actor, body.scope, body.expires_at)
    now = datetime.now(UTC)
    if body.expires_at is not None and body.expires_at <= now:
        raise InvalidRequest("expiresAt must be in the future")
    token = mint_token(API_TOKEN_PREFIX)
    token_id = new_id("tok")
    scope = body.scope.model_dump(mode="json")
    async with in_transaction():
        row = await models.ApiToken.create(
            id=token_id,
            organization_id=actor.organization_id,
            user_id=None,
            display_name=body.display_name,
            token_hash=hash_token(token),
            secret_suffix=token[-4:],
            scope=scope,
            status="active",
            created_at=now,
            expires_at=body.expires_at,
        )
        await audit.record(
            actor=actor,
            event_type="deploy-token.created",
            aggregate_type="deploy-token",
            aggregate_id=token_id,
            payload={"displayName": body.display_name, "scope": scope},
            request_id=call.request_id,
        )
    return CreateDeployTokenResponse(
        token_id=token_id,
        token=token,
        organization_id=actor.organization_id,
        display_name=row.display_name,
        secret_suffix=row.secret_suffix,
        scopes=body.scope,
        scope=body.scope,
        created_at=now,
        expires_at=row.expires_at,
    )


@route(
    "GET",
    "/deploy-tokens",
    summary="List API tokens",
    tag="deploy-tokens",
    permission="deploy-tokens:read",
    query=ListDeployTokensQuery,
    response=DeployTokenList,
)
async def list_tokens(call: Call) -> DeployTokenList:
    """List tokens, newest last, with cursor pagination."""
    query = call.query(ListDeployTokensQuery)
    _check_organization(call.actor, query.organization_id)
    rows = models.ApiToken.filter(organization_id=call.actor.organization_id)
    if query.status is not None:
        rows = rows.filter(status=query.status)
    # Tokens wider than the caller are left out, so a page is filled batch by batch.
    page: list[models.ApiToken] = []
    cursor = query.cursor
    more = False
    while True:
        batch_query = rows.filter(id__gt=cursor) if cursor else rows
        batch = await batch_query.order_by("id").limit(_LIST_BATCH)
        for row in batch:
            if not _visible(call.actor, row):
                continue
            if len(page) == query.limit:
                more = True
                break
            page.append(row)
        if more or len(batch) < _LIST_BATCH:
            break
        cursor = batch[-1].id
    return DeployTokenList(
        items=[_item(r) for r in page], next_cursor=page[-1].id if more and page else None
    )


@route(
    "GET",
    "/deploy-tokens/{tokenId}",
    summary="Show one API token",
    tag="deploy-tokens",
    permission="deploy-tokens:read",
    query=OrganizationQuery,
    response=DeployTokenItem,
)
async def show(call: Call) -> DeployTokenItem:
    """Show a token without its secret."""
    _check_organization(call.actor, call.query(OrganizationQuery).organization_id)
    return _item(await _get(call.actor, call.path["tokenId"]))


@route(
    "POST",
    "/deploy-tokens/{tokenId}/rotate",
    summary="Rotate an API token",
    tag="deploy-tokens",
    permission="deploy-tokens:write",
    body=TokenCommandRequest,
    response=RotateDeployTokenResponse,
)
async def rotate(call: Call) -> RotateDeployTokenResponse:
    """Replace the token's secret; the old plaintext stops working immediately."""
    body = call.body(TokenCommandRequest)
    token_id = call.path["tokenId"]
    _check_organization(call.actor, body.organization_id)
    if body.confirmation.token_id != token_id:
        raise InvalidRequest("confirmation.tokenId must equal the token being rotated")
    row = await _get(call.actor, token_id)
    if row.status != "active":
        raise Conflict("a revoked token cannot be rotated")
    scope = TokenScope.model_validate(row.scope)
    token = mint_token(API_TOKEN_PREFIX)
    now = datetime.now(UTC)
    async with in_transaction():
        await models.ApiToken.filter(id=token_id).update(
            token_hash=hash_token(token), secret_suffix=token[-4:], rotated_at=now
        )
        await audit.record(
            actor=call.actor,
            event_type="deploy-token.rotated",
            aggregate_type="deploy-token",
            aggregate_id=token_id,
            request_id=call.request_id,
        )
    await _end_access(call, token_id, "token-rotated")
    return RotateDeployTokenResponse(token_id=token_id, token=token, rotated_at=now, scopes=scope)


@route(
    "POST",
    "/deploy-tokens/{tokenId}/revoke",
    summary="Revoke an API token",
    tag="deploy-tokens",
    permission="deploy-tokens:write",
    body=TokenCommandRequest,
    response=RevokeDeployTokenResponse,
)
async def revoke(call: Call) -> RevokeDeployTokenResponse:
    """Revoke the token for good; later calls with it get 401."""
    body = call.body(TokenCommandRequest)
    token_id = call.path["tokenId"]
    _check_organization(call.actor, body.organization_id)
    if body.confirmation.token_id != token_id:
        raise InvalidRequest("confirmation.tokenId must equal the token being revoked")
    # Revoking is as sensitive as minting: a narrow token must not cut off a wider one (say,
    # the admin's), which _get hides. Any token may revoke itself.
    row = await _get(call.actor, token_id)
    if row.status == "revoked" and row.revoked_at is not None:
        return RevokeDeployTokenResponse(token_id=token_id, revoked_at=row.revoked_at)
    now = datetime.now(UTC)
    async with in_transaction():
        await models.ApiToken.filter(id=token_id).update(status="revoked", revoked_at=now)
        await audit.record(
            actor=call.actor,
            event_type="deploy-token.revoked",
            aggregate_type="deploy-token",
            aggregate_id=token_id,
            request_id=call.request_id,
        )
    await _end_access(call, token_id, "token-revoked")
    return RevokeDeployTokenResponse(token_id=token_id, revoked_at=now)
