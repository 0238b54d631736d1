"""Logging in and out: password check with backoff, the second factor, and session creation."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.accounts import passwords, session_store, totp
from coordinator.accounts.lockout import LoginThrottle
from coordinator.auth import Principal
from coordinator.db import account_models, models
from coordinator.db.organization_models import OrganizationMember
from coordinator.ids import new_id
from coordinator.secrets import Keyring
from coordinator.tokens.first_admin import DEFAULT_ORGANIZATION_ID
from shared.errors import RateLimited, Unauthorized


def totp_binding(user_id: str) -> str:
    """What a TOTP secret's ciphertext is bound to (a copy on another account will not decrypt)."""
    return f"account-totp:{user_id}"


_WRONG = "the e-mail address or password is wrong"


@dataclass(frozen=True)
class Attempt:
    """One login request as the service needs it (the password is never stored or logged)."""

    email: str
    password: str
    totp_code: str | None
    recovery_code: str | None
    client_kind: str
    display_name: str | None
    address: str
    user_agent: str | None
    request_id: str | None


@dataclass(frozen=True)
class LoggedIn:
    """The new session and its secrets (shown once)."""

    session: account_models.AccountSession
    minted: session_store.Minted
    second_factor: str


async def _audit_failure(attempt: Attempt, user: models.User | None, reason: str) -> None:
    await audit.record(
        actor=None,
        actor_kind="anonymous",
        actor_id=user.id if user else None,
        organization_id=user.organization_id if user else DEFAULT_ORGANIZATION_ID,  # type: ignore[attr-defined]
        event_type="account.login-failed",
        aggregate_type="user",
        aggregate_id=user.id if user else None,
        payload={"email": attempt.email[:320], "reason": reason, "clientAddress": attempt.address},
        request_id=attempt.request_id,
    )


def _locked(seconds: int) -> RateLimited:
    return RateLimited(
        "too many failed logins; retry after the Retry-After header's seconds",
        details={"retryAfterSeconds": seconds},
    )


async def _second_factor(
    attempt: Attempt,
    user: models.User,
    credential: account_models.AccountCredential,
    keyring: Keyring,
) -> str | None:
    """Check the second factor; return what passed ("totp" / "recovery-code") or None."""
    if attempt.totp_code:
        secret = keyring.decrypt(credential.totp_secret or "", totp_binding(user.id))
        step = totp.accepted_step(secret, attempt.totp_code, credential.totp_last_step)
        if step is None:
            return None
        # Conditional on the step still being newer: two racing logins cannot both use a code.
        last = credential.totp_last_step
        rows = account_models.AccountCredential.filter(id=credential.id)
        rows = (
            rows.filter(totp_last_step__lt=step)
            if last is not None
            else rows.filter(totp_last_step__isnull=True)
        )
        return "totp" if await rows.update(totp_last_step=step) == 1 else None
    if attempt.recovery_code:
        used = await account_models.RecoveryCode.filter(
            user_id=user.id,
            code_hash=totp.recovery_code_hash(attempt.recovery_code),
            used_at__isnull=True,
        ).update(used_at=datetime.now(UTC))
        return "recovery-code" if used == 1 else None
    return None


async def login(
    attempt: Attempt,
    *,
    throttle: LoginThrottle,
    keyring: Keyring,
    absolute_seconds: float,
) -> LoggedIn:
    """Check the credentials and open a session; 401 on a wrong one, 429 while locked out."""
    account_key = attempt.email.casefold()
    wait = throttle.retry_after(account_key, attempt.address)
    user = await models.User.get_or_none(email__iexact=attempt.email)
    if wait > 0:
        await _audit_failure(attempt, user, "locked-out")
        raise _locked(wait)
    credential = (
        await account_models.AccountCredential.get_or_none(user_id=user.id) if user else None
    )
    stored = credential.password_hash if credential else None
    # Verified even without an account (against a filler hash): the answer takes as long.
    matched = await passwords.verify_password(stored, attempt.password)
    if user is None or credential is None or not matched:
        throttle.failed(account_key, attempt.address)
        await _audit_failure(attempt, user, "wrong-password")
        raise Unauthorized(_WRONG)
    second = "none"
    if credential.totp_enabled_at is not None:
        if not attempt.totp_code and not attempt.recovery_code:
            # Not a failure: the password was right; the client asks for the code and retries.
            raise Unauthorized(
                "this account needs its second factor: send totpCode (or a recoveryCode)",
                details={"secondFactorRequired": "totp"},
            )
        passed = await _second_factor(attempt, user, credential, keyring)
        if passed is None:
            throttle.failed(account_key, attempt.address)
            await _audit_failure(attempt, user, "wrong-second-factor")
            raise Unauthorized("the second-factor code is wrong or was already used")
        second = passed
    throttle.succeeded(account_key)
    if passwords.needs_rehash(credential.password_hash):
        new_hash = await passwords.hash_password(attempt.password)
        await account_models.AccountCredential.filter(id=credential.id).update(
            password_hash=new_hash
        )
    return await _open_session(attempt, user, second, absolute_seconds)


async def _organization_of(user: models.User) -> str:
    """Where a new session acts: the user's home organization while a member there, else its
    oldest membership (else home, where it may only manage its own account)."""
    home: str = user.organization_id  # type: ignore[attr-defined]
    rows = OrganizationMember.filter(user_id=user.id, organization__deleted_at__isnull=True)
    if await rows.filter(organization_id=home).exists():
        return home
    first = await rows.order_by("id").first()
    return first.organization_id if first else home  # type: ignore[attr-defined]


async def _open_session(
    attempt: Attempt, user: models.User, second: str, absolute_seconds: float
) -> LoggedIn:
    now = datetime.now(UTC)
    minted = session_store.mint()
    organization_id = await _organization_of(user)
    async with in_transaction():
        session = await account_models.AccountSession.create(
            id=new_id(session_store.SESSION_ID_PREFIX),
            user_id=user.id,
            organization_id=organization_id,
            token_hash=session_store.digest(minted.token),
            csrf_hash=session_store.digest(minted.csrf_token),
            client_kind=attempt.client_kind,
            display_name=(attempt.display_name or attempt.client_kind)[:200],
            ip_address=attempt.address[:64],
            user_agent=(attempt.user_agent or "")[:500] or None,
            created_at=now,
            last_active_at=now,
            expires_at=now + timedelta(seconds=absolute_seconds),
        )
        await audit.record(
            actor=None,
            actor_kind="user",
            actor_id=user.id,
            organization_id=organization_id,
            event_type="account.logged-in",
            aggregate_type="user",
            aggregate_id=user.id,
            payload={
                "sessionId": session.id,
                "clientKind": attempt.client_kind,
                "secondFactor": second,
                "clientAddress": attempt.address,
            },
            request_id=attempt.request_id,
        )
    return LoggedIn(session, minted, second)


def session_of(actor: Principal) -> str:
    """The caller's login session id, or 400-worthy ``Unauthorized`` when it is an API token."""
    if actor.token_id is None or not session_store.is_session_id(actor.token_id):
        raise Unauthorized("this call needs a login session, not an API token")
    return actor.token_id
