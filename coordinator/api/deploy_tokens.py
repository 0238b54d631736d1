"""Deploy-token routes: create, list, show, rotate, revoke. Plaintext is shown exactly once."""

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
from coordinator.db import models
from coordinator.terminals import TERMINALS_KEY
from coordinator.token_streams import TOKEN_STREAMS_KEY
from coordinator.tokens import api_tokens
from coordinator.tokens.api_tokens import check_organization
from shared.errors import InvalidRequest


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


def _access(call: Call) -> api_tokens.Access:
    app = call.request.app
    return api_tokens.Access(app[TERMINALS_KEY], app[TOKEN_STREAMS_KEY])


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
    check_organization(actor, body.organization_id)
    minted = await api_tokens.mint(
        actor,
        display_name=body.display_name,
        scope=body.scope.model_dump(mode="json"),
        expires_at=body.expires_at,
        request_id=call.request_id,
    )
    row = minted.row
    return CreateDeployTokenResponse(
        token_id=row.id,
        token=minted.token,
        organization_id=actor.organization_id,
        display_name=row.display_name,
        secret_suffix=row.secret_suffix,
        scopes=body.scope,
        scope=body.scope,
        created_at=row.created_at,
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
    check_organization(call.actor, query.organization_id)
    page = await api_tokens.page(call.actor, query.status, query.cursor, query.limit)
    return DeployTokenList(items=[_item(r) for r in page.items], next_cursor=page.next_cursor)


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
    check_organization(call.actor, call.query(OrganizationQuery).organization_id)
    return _item(await api_tokens.get(call.actor, call.path["tokenId"]))


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
    check_organization(call.actor, body.organization_id)
    if body.confirmation.token_id != token_id:
        raise InvalidRequest("confirmation.tokenId must equal the token being rotated")
    row, token, rotated_at = await api_tokens.rotate(
        call.actor, token_id, _access(call), call.request_id
    )
    return RotateDeployTokenResponse(
        token_id=token_id,
        token=token,
        rotated_at=rotated_at,
        scopes=TokenScope.model_validate(row.scope),
    )


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
    check_organization(call.actor, body.organization_id)
    if body.confirmation.token_id != token_id:
        raise InvalidRequest("confirmation.tokenId must equal the token being revoked")
    revoked_at = await api_tokens.revoke(call.actor, token_id, _access(call), call.request_id)
    return RevokeDeployTokenResponse(token_id=token_id, revoked_at=revoked_at)
