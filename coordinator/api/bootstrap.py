"""Bootstrap routes: status, and the one-time creation of the first admin and its API token."""

from typing import Final

from coordinator.api.routing import Call, route
from coordinator.api.schemas import (
    BootstrapStatusResponse,
    FirstAdminRequest,
    FirstAdminResponse,
    LoginMethod,
)
from coordinator.tokens import first_admin as bootstrap
from coordinator.tokens.first_admin import DEFAULT_ORGANIZATION_ID, DEFAULT_ORGANIZATION_SLUG

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
    found = await bootstrap.status()
    org = found.organization
    required = not found.admin_exists
    return BootstrapStatusResponse(
        bootstrap_required=required,
        first_admin_configured=found.admin_exists,
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
    created = await bootstrap.create(body.email, body.display_name, call.request_id)
    return FirstAdminResponse(
        bootstrap_required=False,
        created=True,
        email=body.email,
        login_methods=_LOGIN_METHODS,
        organization_id=DEFAULT_ORGANIZATION_ID,
        organization_slug=DEFAULT_ORGANIZATION_SLUG,
        user_id=created.user_id,
        generated_password=None,
        login_url=None,
        api_token=created.token,
        api_token_id=created.token_id,
    )
