"""Bootstrap routes: status, and the one-time creation of the first admin and its API token."""

from datetime import UTC, datetime
from typing import Final

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.api.routing import Call, route
from coordinator.api.schemas import (
    BootstrapStatusResponse,
    FirstAdminRequest,
    FirstAdminResponse,
    LoginMethod,
)
from coordinator.auth import API_TOKEN_PREFIX, hash_token, mint_token
from coordinator.db import models
from coordinator.ids import new_id
from shared.errors import Conflict

# v1 serves one organization; a fixed id makes a racing second bootstrap fail on the primary key.
DEFAULT_ORGANIZATION_ID: Final = "org_default"
DEFAULT_ORGANIZATION_SLUG: Final = "default"

_LOGIN_METHODS: Final = [
    LoginMethod(key="api-token", configured=True, enabled=True, reason=None),
    LoginMethod(
        key="local-password",
        configured=False,
        enabled=False,
        reason="Berth authenticates with bearer API tokens; passwords are not supported.",
    ),
]


@route(
    "GET",
    "/bootstrap/auth/status",
    summary="Report whether the first admin exists",
    tag="bootstrap",
    permission=None,
    response=BootstrapStatusResponse,
)
async def status(_call: Call) -> BootstrapStatusResponse:
    """Tell a fresh install what to do next."""
    org = await models.Organization.get_or_none(id=DEFAULT_ORGANIZATION_ID)
    admin = await models.User.filter(role="admin").order_by("created_at").first()
    required = admin is None
    return BootstrapStatusResponse(
        bootstrap_required=required,
        first_admin_configured=admin is not None,
        organization_configured=org is not None,
        login_methods=_LOGIN_METHODS,
        # Unauthenticated: once bootstrapped, the admin's address is nobody's business here
        # (before, there is no admin, so the field is always null; kept for the wire shape).
        first_admin_email=None,
        login_url=None,
        organization_id=org.id if org else None,
        organization_slug=org.slug if org else None,
        next_steps=(
            ["POST /bootstrap/auth/first-admin with {email, displayName}"]
            if required
            else ["Authenticate with 'Authorization: Bearer <apiToken>'"]
        ),
    )


@route(
    "POST",
    "/bootstrap/auth/first-admin",
    summary="Create the first admin and its API token",
    tag="bootstrap",
    permission=None,
    body=FirstAdminRequest,
    response=FirstAdminResponse,
    status=201,
)
async def first_admin(call: Call) -> FirstAdminResponse:
    """Create the organization, the admin and an all-permission token; refuse a second call."""
    body = call.body(FirstAdminRequest)
    now = datetime.now(UTC)
    token = mint_token(API_TOKEN_PREFIX)
    user_id = new_id("usr")
    token_id = new_id("tok")
    if await models.Organization.exists(id=DEFAULT_ORGANIZATION_ID):
        raise Conflict("the first admin already exists; authenticate with its API token")
    try:
        async with in_transaction():
            _ = await models.Organization.create(
                id=DEFAULT_ORGANIZATION_ID,
                name="Default",
                slug=DEFAULT_ORGANIZATION_SLUG,
                created_at=now,
            )
            _ = await models.User.create(
                id=user_id,
                organization_id=DEFAULT_ORGANIZATION_ID,
                email=body.email,
                display_name=body.display_name,
                role="admin",
                created_at=now,
            )
            _ = await models.ApiToken.create(
                id=token_id,
                organization_id=DEFAULT_ORGANIZATION_ID,
                user_id=user_id,
                display_name="first admin",
                token_hash=hash_token(token),
                secret_suffix=token[-4:],
                scope={"permissions": ["*"]},
                status="active",
                created_at=now,
            )
            await audit.record(
                actor=None,
                actor_kind="bootstrap",
                actor_id=user_id,
                organization_id=DEFAULT_ORGANIZATION_ID,
                event_type="bootstrap.first-admin-created",
                aggregate_type="user",
                aggregate_id=user_id,
                payload={"email": body.email, "apiTokenId": token_id},
                request_id=call.request_id,
            )
    except IntegrityError as exc:
        # Two racing bootstrap calls: the loser hits the fixed organization id.
        raise Conflict("the first admin already exists; authenticate with its API token") from exc
    return FirstAdminResponse(
        bootstrap_required=False,
        created=True,
        email=body.email,
        login_methods=_LOGIN_METHODS,
        organization_id=DEFAULT_ORGANIZATION_ID,
        organization_slug=DEFAULT_ORGANIZATION_SLUG,
        user_id=user_id,
        generated_password=None,
        login_url=None,
        api_token=token,
        api_token_id=token_id,
    )
