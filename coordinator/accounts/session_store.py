"""Login sessions as credentials: minting, resolving a presented secret, liveness, roles.

Kept free of ``coordinator.auth`` (which calls it to resolve a request's principal), so the
service modules can use ``Principal`` without an import cycle.
"""

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

import orjson

from coordinator.db import account_models, organization_models, read_connection
from coordinator.db.raw_sql import bind_marks
from coordinator.organizations.roles import bounds_of, grants_of, permissions_of
from coordinator.token_scope import Bounds

SESSION_TOKEN_PREFIX: Final = "berth_ss_"  # noqa: S105 (a prefix, not a secret)
SESSION_ID_PREFIX: Final = "sess"
SESSION_COOKIE: Final = "berth_session"
CSRF_COOKIE: Final = "berth_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
# lastActiveAt drives idle expiry; written at most this often (and at most every quarter of the
# idle timeout), so reads do not all turn into writes.
_TOUCH_SECONDS: Final = 60.0


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

    session_id: str
    user_id: str
    organization_id: str
    csrf_hash: str
    expires_at: datetime
    # The user's role in the session's organization (None: no longer a member there).
    role: str | None
    permissions: frozenset[str]
    # Per-project grants {projectId: permissions} and what a token minted by it may reach.
    project_grants: Mapping[str, frozenset[str]]
    bounds: Bounds


class SessionProblem(Exception):
    """The presented session secret does not work (the message says why)."""


def _moment(value: object) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise SessionProblem("session row is unreadable")
    return moment.astimezone(UTC)


async def _row(wanted: str) -> dict[str, Any] | None:
    """The session row and its user's role in the session's organization by secret digest:
    one hand-written join, as cheap as an API token's lookup (the ORM's query building cost
    more than SQLite here). Read on every request, so a role change or a removal applies to
    the very next one."""
    connection = read_connection()
    (mark,) = bind_marks(connection.capabilities.dialect, 1)
    sessions = account_models.AccountSession._meta.db_table
    members = organization_models.OrganizationMember._meta.db_table
    # Nothing here comes from input but the bound digest.
    sql = (
        'SELECT s."id", s."user_id", s."organization_id", s."token_hash", s."csrf_hash", '  # noqa: S608
        's."expires_at", s."last_active_at", s."revoked_at", m."role", m."project_roles" '
        f'FROM "{sessions}" s LEFT JOIN "{members}" m ON m."user_id" = s."user_id" '
        'AND m."organization_id" = s."organization_id" '
        f'WHERE s."token_hash" = {mark}'
    )
    _, fetched = await connection.execute_query(sql, [wanted])
    return dict(fetched[0]) if fetched else None


@dataclass(frozen=True)
class _Rights:
    permissions: frozenset[str]
    project_grants: Mapping[str, frozenset[str]]
    bounds: Bounds


@lru_cache(maxsize=256)
def _rights(role: str | None, raw_grants: str | None) -> _Rights:
    """What a role and its grants (the column's JSON text) allow; cached by that text, as every
    request of a session reads the same (1,000 grants cost ~1 ms to rebuild: bench/auth.py)."""
    parsed = orjson.loads(raw_grants) if raw_grants else None
    grants = {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else None
    return _Rights(permissions_of(role), grants_of(grants), bounds_of(role, grants or None))


def _grants_text(value: object) -> str | None:
    """The grants column as read raw: JSON text (SQLite, PostgreSQL), or already parsed."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


async def resolve(secret: str, idle_seconds: float) -> Resolved:
    """The live session ``secret`` opens, or ``SessionProblem``; refreshes ``lastActiveAt``."""
    wanted = digest(secret)
    row = await _row(wanted)
    if row is None or not hmac.compare_digest(str(row["token_hash"]), wanted):
        raise SessionProblem("session is not valid")
    now = datetime.now(UTC)
    expires_at = _moment(row["expires_at"])
    last_active = _moment(row["last_active_at"])
    if row["revoked_at"] is not None:
        raise SessionProblem("session has been revoked")
    if expires_at <= now:
        raise SessionProblem("session has expired")
    if last_active + timedelta(seconds=idle_seconds) <= now:
        raise SessionProblem("session has expired (idle)")
    session_id = str(row["id"])
    role = None if row["role"] is None else str(row["role"])
    rights = _rights(role, _grants_text(row["project_roles"]))
    if (now - last_active).total_seconds() >= min(_TOUCH_SECONDS, idle_seconds / 4):
        await account_models.AccountSession.filter(id=session_id).update(last_active_at=now)
    return Resolved(
        session_id=session_id,
        user_id=str(row["user_id"]),
        organization_id=str(row["organization_id"]),
        csrf_hash=str(row["csrf_hash"]),
        expires_at=expires_at,
        role=role,
        permissions=rights.permissions,
        project_grants=rights.project_grants,
        bounds=rights.bounds,
    )


async def is_live(session_id: str) -> bool:
    """Whether session ``session_id`` still works (not revoked, within its absolute expiry)."""
    row = await account_models.AccountSession.get_or_none(id=session_id, using_db=read_connection())
    return row is not None and row.revoked_at is None and row.expires_at > datetime.now(UTC)


def csrf_matches(session: Resolved, presented: str | None) -> bool:
    """Whether ``presented`` (the CSRF header) is ``session``'s CSRF token."""
    return bool(presented) and hmac.compare_digest(session.csrf_hash, digest(presented or ""))
