"""Request and response models of login, logout and the ``/account`` routes (docs/accounts.md)."""

from datetime import datetime
from typing import Literal

from pydantic import Field
from pydantic.config import JsonDict

from coordinator.api.schemas import ApiRequest
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.wire import WireModel

_SECRET: JsonDict = {"writeOnly": True}


class LoginRequest(ApiRequest):
    """``POST /auth/login``: e-mail, password, and the second factor if the account has one."""

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=256, json_schema_extra=_SECRET)
    totp_code: str | None = Field(default=None, max_length=12, json_schema_extra=_SECRET)
    recovery_code: str | None = Field(default=None, max_length=40, json_schema_extra=_SECRET)
    client_kind: Literal["web", "cli"] = "web"
    display_name: str | None = Field(default=None, max_length=200)


class LoginResponse(WireModel):
    """The new session; ``token`` (bearer value) and ``csrfToken`` are shown only here."""

    session_id: str
    user_id: str
    client_kind: str
    created_at: datetime
    expires_at: datetime
    idle_timeout_seconds: int
    second_factor: Literal["none", "totp", "recovery-code"]
    token: str
    csrf_token: str


class SessionRevoked(WireModel):
    """``POST /account/sessions/{sessionId}/revoke`` and ``POST /auth/logout``."""

    session_id: str
    revoked_at: datetime


class AccountProfile(WireModel):
    """``GET``/``POST /account/profile`` (Appaloft's shape plus the login facts)."""

    user_id: str
    email: str
    display_name: str
    avatar_url: str | None
    email_verified: bool
    created_at: datetime
    updated_at: datetime
    password_configured: bool
    two_factor_enabled: bool


class UpdateProfileRequest(ApiRequest):
    """What can change (omitted fields stay as they are); ``avatarUrl: ""`` clears it."""

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    avatar_url: str | None = Field(default=None, max_length=500, pattern=r"^(https://\S+)?$")


class SessionItem(WireModel):
    """One login session, as Appaloft lists them."""

    session_id: str
    user_id: str
    client_kind: str
    display_name: str
    created_at: datetime
    expires_at: datetime
    ip_address: str | None
    user_agent: str | None
    current: bool
    last_active_at: datetime


class SessionList(WireModel):
    """``GET /account/sessions``."""

    items: list[SessionItem]
    next_cursor: str | None = None


class SessionsQuery(ApiRequest):
    """Cursor pagination of the caller's sessions."""

    limit: int = Field(default=100, gt=0, le=250)
    cursor: str | None = Field(default=None, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)


class UserConfirmation(WireModel):
    """Names the account being deleted."""

    user_id: str = Field(max_length=ID_MAX_LENGTH)


class DeleteAccountRequest(ApiRequest):
    """``DELETE /account``."""

    confirmation: UserConfirmation


class AccountDeleted(WireModel):
    """``DELETE /account``'s answer."""

    user_id: str
    deleted_at: datetime


class PasswordRequest(ApiRequest):
    """``POST /account/password``: the first password, or a change (needs the current one)."""

    current_password: str | None = Field(default=None, max_length=256, json_schema_extra=_SECRET)
    new_password: str = Field(min_length=1, max_length=1024, json_schema_extra=_SECRET)


class PasswordChanged(WireModel):
    """Other sessions were revoked (the one making the change stays)."""

    user_id: str
    revoked_session_ids: list[str]


class TwoFactorEnrolment(WireModel):
    """``POST /account/two-factor/enable``: the secret, shown once, and its otpauth URI."""

    secret: str
    otpauth_uri: str


class TwoFactorCode(ApiRequest):
    """A current TOTP code (or, to disable, an unused recovery code)."""

    code: str = Field(min_length=6, max_length=40, json_schema_extra=_SECRET)


class TwoFactorEnabled(WireModel):
    """Two-factor login is on; the recovery codes are shown only here."""

    enabled: bool
    recovery_codes: list[str]


class TwoFactorState(WireModel):
    """Whether two-factor login is on."""

    enabled: bool
