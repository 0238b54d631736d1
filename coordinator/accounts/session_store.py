"""Login sessions as credentials: minting, resolving a presented secret, liveness, roles.

Kept free of ``coordinator.auth`` (which calls it to resolve a request's principal), so the
service modules can use ``Principal`` without an import cycle.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from coordinator.db import account_models, models, read_connection

SESSION_TOKEN_PREFIX: Final = "berth_ss_"  # noqa: S105 (a prefix, not a secret)
SESSION_ID_PREFIX: Final = "sess"
SESSION_COOKIE: Final = "berth_session"
CSRF_COOKIE: Final = "berth_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
# lastActiveAt drives idle expiry; written at most this often (and at most every quarter of the
# idle timeout), so reads do not all turn into writes.
_TOUCH_SECONDS: Final = 60.0

# What each role may do; the organization roles of the next step extend this table.
ROLE_PERMISSIONS: Final[dict[str, frozenset[str]]] = {"admin": frozenset({"*"})}


def digest(secret: str) -> str:
    """SHA-256 hex of a session secret or CSRF token (256 random bits: nothing to brute-force)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def is_session_id(credential_id: str) -> bool:
    """Whether a principal's ``token_id`` names a login session (not an API token)."""
    return credential_id.startswith(SESSION_ID_PREFIX + "_")


@dataclass(frozen=True)
class Minted:
    """A new session's secrets, shown once: the bearer/cookie value and the CSRF token."""

    token: str
    csrf_token: str


def mint() -> Minted:
    """Fresh random secrets for a new session."""
    return Minted(SESSION_TOKEN_PREFIX + secrets.token_urlsafe(32), secrets.token_urlsafe(32))


@dataclass(frozen=True)
class Resolved:
    """A live session and what its user may do."""

    session: account_models.AccountSession
    user: models.User
    permissions: frozenset[str]


class SessionProblem(Exception):
    """The presented session secret does not work (the message says why)."""


async def resolve(secret: str, idle_seconds: float) -> Resolved:
    """The live session ``secret`` opens, or ``SessionProblem``; refreshes ``lastActiveAt``."""
    wanted = digest(secret)
    row = await account_models.AccountSession.get_or_none(
        token_hash=wanted, using_db=read_connection()
    )
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        raise SessionProblem("session is not valid")
    now = datetime.now(UTC)
    if row.revoked_at is not None:
        raise SessionProblem("session has been revoked")
    if row.expires_at <= now:
        raise SessionProblem("session has expired")
    if row.last_active_at + timedelta(seconds=idle_seconds) <= now:
        raise SessionProblem("session has expired (idle)")
    user = await models.User.get_or_none(id=row.user_id, using_db=read_connection())  # type: ignore[attr-defined]
    if user is None:
        raise SessionProblem("session's account no longer exists")
    if (now - row.last_active_at).total_seconds() >= min(_TOUCH_SECONDS, idle_seconds / 4):
        await account_models.AccountSession.filter(id=row.id).update(last_active_at=now)
        row.last_active_at = now
    return Resolved(row, user, ROLE_PERMISSIONS.get(user.role, frozenset()))


async def is_live(session_id: str) -> bool:
    """Whether session ``session_id`` still works (not revoked, within its absolute expiry)."""
    row = await account_models.AccountSession.get_or_none(id=session_id, using_db=read_connection())
    return row is not None and row.revoked_at is None and row.expires_at > datetime.now(UTC)


def csrf_matches(session: account_models.AccountSession, presented: str | None) -> bool:
    """Whether ``presented`` (the CSRF header) is ``session``'s CSRF token."""
    return bool(presented) and hmac.compare_digest(session.csrf_hash, digest(presented or ""))
