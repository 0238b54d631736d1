"""Login, logout and the caller's own account: profile, password, sessions, two-factor login."""

from typing import Final

from aiohttp import web

from coordinator.accounts import LOGIN_THROTTLE_KEY, login, profile, session_store, sessions
from coordinator.api.account_schemas import (
    AccountDeleted,
    AccountProfile,
    DeleteAccountRequest,
    LoginRequest,
    LoginResponse,
    PasswordChanged,
    PasswordRequest,
    SessionItem,
    SessionList,
    SessionRevoked,
    SessionsQuery,
    TwoFactorCode,
    TwoFactorEnabled,
    TwoFactorEnrolment,
    TwoFactorState,
    UpdateProfileRequest,
)
from coordinator.api.routing import Call, route
from coordinator.appkeys import SETTINGS_KEY
from coordinator.origin import origin_allowed
from coordinator.ratelimit import LIMITER_KEY
from coordinator.terminals import TERMINALS_KEY
from coordinator.token_streams import TOKEN_STREAMS_KEY
from coordinator.tokens.api_tokens import Access
from shared.errors import Forbidden, InvalidRequest
from shared.wire import dump_json

_TAG: Final = "account"


def _access(call: Call) -> Access:
    return Access(call.request.app[TERMINALS_KEY], call.request.app[TOKEN_STREAMS_KEY])


def _secure(request: web.Request) -> bool:
    public_url = request.app[SETTINGS_KEY].public_url or ""
    return request.secure or public_url.startswith("https://")


def _set_cookies(
    response: web.Response, request: web.Request, token: str, csrf: str, max_age: int
) -> None:
    secure = _secure(request)
    response.set_cookie(
        session_store.SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=secure,
    )
    # Readable by the console's scripts, which echo it in X-CSRF-Token (docs/accounts.md).
    response.set_cookie(
        session_store.CSRF_COOKIE,
        csrf,
        max_age=max_age,
        path="/",
        httponly=False,
        samesite="Lax",
        secure=secure,
    )


def _clear_cookies(response: web.Response) -> None:
    for name in (session_store.SESSION_COOKIE, session_store.CSRF_COOKIE):
        response.del_cookie(name, path="/")


@route(
    "POST",
    "/auth/login",
    summary="Log in with e-mail and password (and the second factor); open a session",
    tag=_TAG,
    permission=None,
    body=LoginRequest,
    response=LoginResponse,
    status=201,
    errors=(401, 403, 429),
)
async def log_in(call: Call) -> web.StreamResponse:
    """Answer the session (bearer token for the CLI) and set its cookies (browsers)."""
    request = call.request
    if not origin_allowed(request):
        # Login CSRF: a page elsewhere must not log a browser into an account it chose.
        raise Forbidden("log in from the coordinator's own pages (or without an Origin header)")
    body = call.body(LoginRequest)
    settings = request.app[SETTINGS_KEY]
    attempt = login.Attempt(
        email=body.email,
        password=body.password,
        totp_code=body.totp_code,
        recovery_code=body.recovery_code,
        client_kind=body.client_kind,
        display_name=body.display_name,
        address=request.app[LIMITER_KEY].client_address(request),
        user_agent=request.headers.get("User-Agent"),
        request_id=call.request_id,
    )
    done = await login.login(
        attempt,
        throttle=request.app[LOGIN_THROTTLE_KEY],
        keyring=call.keyring,
        absolute_seconds=settings.session_absolute_seconds,
    )
    session = done.session
    answer = LoginResponse(
        session_id=session.id,
        user_id=session.user_id,  # type: ignore[attr-defined]
        client_kind=session.client_kind,
        created_at=session.created_at,
        expires_at=session.expires_at,
        idle_timeout_seconds=int(settings.session_idle_seconds),
        second_factor=done.second_factor,  # type: ignore[arg-type]
        token=done.minted.token,
        csrf_token=done.minted.csrf_token,
    )
    response = web.Response(status=201, text=dump_json(answer), content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    _set_cookies(
        response,
        request,
        done.minted.token,
        done.minted.csrf_token,
        int(settings.session_absolute_seconds),
    )
    return response


@route(
    "POST",
    "/auth/logout",
    summary="End the calling session and clear its cookies",
    tag=_TAG,
    permission="account:write",
    response=SessionRevoked,
)
async def log_out(call: Call) -> web.StreamResponse:
    """Revoke the session the request came with (an API token cannot log out)."""
    session_id = login.session_of(call.actor)
    revoked_at = await sessions.revoke(call.actor, session_id, _access(call), call.request_id)
    answer = SessionRevoked(session_id=session_id, revoked_at=revoked_at)
    response = web.Response(text=dump_json(answer), content_type="application/json")
    _clear_cookies(response)
    return response


async def _profile(call: Call) -> AccountProfile:
    account = await profile.of(call.actor)
    user, credential = account.user, account.credential
    return AccountProfile(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        avatar_url=credential.avatar_url if credential else None,
        email_verified=False,
        created_at=user.created_at,
        updated_at=credential.updated_at if credential else user.created_at,
        password_configured=credential is not None,
        two_factor_enabled=bool(credential and credential.totp_enabled_at),
    )


@route(
    "GET",
    "/account/profile",
    summary="Show the caller's account",
    tag=_TAG,
    permission="account:read",
    response=AccountProfile,
)
async def show_profile(call: Call) -> AccountProfile:
    """The caller's profile and whether password and two-factor login are set up."""
    return await _profile(call)


@route(
    "POST",
    "/account/profile",
    summary="Change the caller's display name or avatar",
    tag=_TAG,
    permission="account:write",
    body=UpdateProfileRequest,
    response=AccountProfile,
)
async def update_profile(call: Call) -> AccountProfile:
    """Change what the body names; answer the whole profile."""
    body = call.body(UpdateProfileRequest)
    _ = await profile.update(call.actor, body.display_name, body.avatar_url, call.request_id)
    return await _profile(call)


@route(
    "GET",
    "/account/sessions",
    summary="List the caller's live login sessions",
    tag=_TAG,
    permission="account:read",
    query=SessionsQuery,
    response=SessionList,
)
async def list_sessions(call: Call) -> SessionList:
    """Live sessions, oldest first; ``current`` marks the one the request came with."""
    query = call.query(SessionsQuery)
    found = await sessions.page(call.actor, query.cursor, query.limit)
    return SessionList(
        items=[
            SessionItem(
                session_id=row.id,
                user_id=row.user_id,  # type: ignore[attr-defined]
                client_kind=row.client_kind,
                display_name=row.display_name,
                created_at=row.created_at,
                expires_at=row.expires_at,
                ip_address=row.ip_address,
                user_agent=row.user_agent,
                current=sessions.is_current(call.actor, row),
                last_active_at=row.last_active_at,
            )
            for row in found.items
        ],
        next_cursor=found.next_cursor,
    )


@route(
    "POST",
    "/account/sessions/{sessionId}/revoke",
    summary="Revoke one of the caller's sessions (its streams and terminals end at once)",
    tag=_TAG,
    permission="account:write",
    response=SessionRevoked,
)
async def revoke_session(call: Call) -> SessionRevoked:
    """Revoke the session; another user's session id answers 404."""
    session_id = call.path["sessionId"]
    revoked_at = await sessions.revoke(call.actor, session_id, _access(call), call.request_id)
    return SessionRevoked(session_id=session_id, revoked_at=revoked_at)


@route(
    "POST",
    "/account/password",
    summary="Set or change the caller's password (other sessions are revoked)",
    tag=_TAG,
    permission="account:write",
    body=PasswordRequest,
    response=PasswordChanged,
    errors=(401,),
)
async def change_password(call: Call) -> PasswordChanged:
    """The first password needs nothing else; a change needs ``currentPassword``."""
    body = call.body(PasswordRequest)
    revoked = await profile.set_password(
        call.actor, body.current_password, body.new_password, _access(call), call.request_id
    )
    return PasswordChanged(user_id=call.actor.actor_id, revoked_session_ids=revoked)


@route(
    "DELETE",
    "/account",
    summary="Delete the caller's account (not the last admin's)",
    tag=_TAG,
    permission="account:write",
    body=DeleteAccountRequest,
    response=AccountDeleted,
)
async def delete_account(call: Call) -> AccountDeleted:
    """Refused with 409 for the organization's last admin; the body must name the account."""
    body = call.body(DeleteAccountRequest)
    if body.confirmation.user_id != call.actor.actor_id:
        raise InvalidRequest(
            "confirmation.userId must be the caller's own user id",
            details={"problems": [{"field": "confirmation.userId", "message": "mismatch"}]},
        )
    deleted_at = await profile.delete(call.actor, _access(call), call.request_id)
    return AccountDeleted(user_id=call.actor.actor_id, deleted_at=deleted_at)


@route(
    "POST",
    "/account/two-factor/enable",
    summary="Start two-factor enrolment: a TOTP secret shown once",
    tag=_TAG,
    permission="account:write",
    response=TwoFactorEnrolment,
)
async def enable_two_factor(call: Call) -> TwoFactorEnrolment:
    """The secret and otpauth URI; nothing changes at login until a code confirms it."""
    enrolment = await profile.begin_totp(call.actor, call.keyring, call.request_id)
    return TwoFactorEnrolment(secret=enrolment.secret, otpauth_uri=enrolment.uri)


@route(
    "POST",
    "/account/two-factor/confirm",
    summary="Confirm two-factor enrolment with a code; answer the recovery codes once",
    tag=_TAG,
    permission="account:write",
    body=TwoFactorCode,
    response=TwoFactorEnabled,
)
async def confirm_two_factor(call: Call) -> TwoFactorEnabled:
    """From now on login asks for a code."""
    codes = await profile.confirm_totp(
        call.actor, call.body(TwoFactorCode).code, call.keyring, call.request_id
    )
    return TwoFactorEnabled(enabled=True, recovery_codes=codes)


@route(
    "POST",
    "/account/two-factor/disable",
    summary="Turn two-factor login off (needs a current code or a recovery code)",
    tag=_TAG,
    permission="account:write",
    body=TwoFactorCode,
    response=TwoFactorState,
    errors=(401,),
)
async def disable_two_factor(call: Call) -> TwoFactorState:
    """Login goes back to the password alone."""
    await profile.disable_totp(
        call.actor, call.body(TwoFactorCode).code, call.keyring, call.request_id
    )
    return TwoFactorState(enabled=False)
