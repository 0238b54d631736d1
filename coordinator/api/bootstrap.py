"""Bootstrap routes: status, and the one-time creation of the first admin and its API token."""

from typing import Final

from coordinator.accounts import passwords, profile
from coordinator.api.routing import Call, route
from coordinator.api.schemas import (
    BootstrapStatusResponse,
    FirstAdminRequest,
    FirstAdminResponse,
    LoginMethod,
)
from coordinator.tokens import first_admin as bootstrap
from coordinator.tokens.first_admin import DEFAULT_ORGANIZATION_ID, DEFAULT_ORGANIZATION_SLUG

_LOGIN_URL: Final = "/auth/login"


async def _login_methods() -> list[LoginMethod]:
    configured = await profile.local_password_configured()
    return [
        LoginMethod(key="api-token", configured=True, enabled=True, reason=None),
        LoginMethod(
            key="local-password",
            configured=configured,
            enabled=True,
            reason=None
            if configured
            else "no account has a password yet: POST /account/password (docs/accounts.md)",
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
        login_methods=await _login_methods(),
        # Unauthenticated: once bootstrapped, the admin's address is nobody's business here
        # (before, there is no admin, so the field is always null; kept for the wire shape).
        first_admin_email=None,
        login_url=_LOGIN_URL,
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
    password_hash = None
    if body.password is not None:
        passwords.require_strong(body.password, body.email)
        password_hash = await passwords.hash_password(body.password)
    created = await bootstrap.create(body.email, body.display_name, call.request_id, password_hash)
    return FirstAdminResponse(
        bootstrap_required=False,
        created=True,
        email=body.email,
        login_methods=await _login_methods(),
        organization_id=DEFAULT_ORGANIZATION_ID,
        organization_slug=DEFAULT_ORGANIZATION_SLUG,
        user_id=created.user_id,
        generated_password=None,
        login_url=_LOGIN_URL,
        api_token=created.token,
        api_token_id=created.token_id,
    )
