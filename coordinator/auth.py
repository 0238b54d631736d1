"""Bearer API tokens and join tokens: minting, hashing, and resolving a request's principal.

A request authenticates with an API token or a login session (docs/accounts.md): the session's
secret as a bearer token (the CLI) or in its cookie (browsers, where every mutation must also
carry the session's CSRF token and, if it sends ``Origin``, come from the coordinator's own).
"""

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from coordinator.accounts import session_store
from coordinator.appkeys import SETTINGS_KEY
from coordinator.db import models, read_connection
from coordinator.origin import origin_allowed
from coordinator.permissions import ALL_PERMISSIONS
from coordinator.token_scope import Bounds
from shared.errors import Forbidden, Unauthorized

API_TOKEN_PREFIX: Final = "berth_at_"  # noqa: S105 (a prefix, not a secret)
JOIN_TOKEN_PREFIX: Final = "berth_jt_"  # noqa: S105

# lastUsedAt is advisory; writing it on every request would turn reads into writes.
_LAST_USED_GRANULARITY_SECONDS: Final = 60


def mint_token(prefix: str) -> str:
    """Return a new random token (256 bits) with a type prefix that secret scanners recognise."""
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest stored in place of a token.

    Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: resolved from the bearer token on every request."""

    kind: str
    actor_id: str
    token_id: str | None
    organization_id: str
    permissions: frozenset[str]
    server_ids: frozenset[str]
    # The token's whole scope and expiry: what a token it mints or manages must stay within.
    bounds: Bounds
    project_ids: frozenset[str] = frozenset()
    environment_ids: frozenset[str] = frozenset()
    resource_ids: frozenset[str] = frozenset()
    # A login session's absolute expiry: its ``bounds`` are its account's rights, which do not
    # expire (so a token it mints may outlive it), but its streams and terminals end with it.
    session_expires_at: datetime | None = None
    # A member's per-project grants {projectId: permissions} (coordinator/organizations/): in a
    # granted project the route's permission must also be in that project's grant.
    project_grants: Mapping[str, frozenset[str]] = field(
        default_factory=dict, hash=False, compare=False
    )
    # The permission of the route being served (set by coordinator.api.routing), which the
    # per-project grants are checked against.
    acting_permission: str | None = None

    @property
    def credential_expires_at(self) -> datetime | None:
        """When the credential behind this request stops working (None: not by time)."""
        return self.session_expires_at or self.bounds.expires_at

    def allows(self, permission: str) -> bool:
        """Return whether the token's scope grants ``permission``."""
        return ALL_PERMISSIONS in self.permissions or permission in self.permissions

    def require(self, permission: str) -> None:
        """Raise ``Forbidden`` unless the scope grants ``permission``."""
        if not self.allows(permission):
            raise Forbidden(
                f"this token's scope does not include {permission!r}",
                details={"requiredPermission": permission},
            )

    def can_see_server(self, server_id: str) -> bool:
        """A scope with ``deploymentTargetIds`` only reaches those servers (others look absent)."""
        return not self.server_ids or server_id in self.server_ids

    def can_see_project(self, project_id: str) -> bool:
        """A scope with ``projectIds`` only reaches those projects (others look absent).

        In a project the caller may only read (its grant lacks the route's permission) this
        raises ``Forbidden``: the project is visible, so hiding it would tell nothing and
        answering 404 would lie. Filters over many rows use ``reaches_resource`` instead.
        """
        if not self._in_project_scope(project_id):
            return False
        self.require_grant(project_id)
        return True

    def can_see_environment(self, project_id: str, environment_id: str) -> bool:
        """Project scope applies, then ``environmentIds`` if the token names any (then the
        project's grant, as for ``can_see_project``)."""
        if not self._in_environment_scope(project_id, environment_id):
            return False
        self.require_grant(project_id)
        return True

    def can_see_resource(self, project_id: str, environment_id: str, resource_id: str) -> bool:
        """Project and environment scope apply, then ``resourceIds`` if the token names any
        (then the project's grant, as for ``can_see_project``)."""
        if not self._in_resource_scope(project_id, environment_id, resource_id):
            return False
        self.require_grant(project_id)
        return True

    def reaches_resource(self, project_id: str, environment_id: str, resource_id: str) -> bool:
        """Whether the route may act on this resource, never raising: for filters that skip
        what the caller may not touch (a bulk prune leaves a read-only project's rows alone)."""
        return self._in_resource_scope(
            project_id, environment_id, resource_id
        ) and self._grant_permits(project_id)

    def _in_project_scope(self, project_id: str) -> bool:
        return not self.project_ids or project_id in self.project_ids

    def _in_environment_scope(self, project_id: str, environment_id: str) -> bool:
        return self._in_project_scope(project_id) and (
            not self.environment_ids or environment_id in self.environment_ids
        )

    def _in_resource_scope(self, project_id: str, environment_id: str, resource_id: str) -> bool:
        return self._in_environment_scope(project_id, environment_id) and (
            not self.resource_ids or resource_id in self.resource_ids
        )

    def _grant_permits(self, project_id: str) -> bool:
        """A member's grant on ``project_id`` includes the route's permission (no grant: the
        role alone decides, which ``require`` checked)."""
        granted = self.project_grants.get(project_id)
        if granted is None or self.acting_permission is None:
            return True
        return ALL_PERMISSIONS in granted or self.acting_permission in granted

    def require_grant(self, project_id: str) -> None:
        """Raise ``Forbidden`` when a member's grant on ``project_id`` lacks the route's
        permission (a row the caller may read but not change)."""
        if not self._grant_permits(project_id):
            raise Forbidden(
                f"your grant on project {project_id!r} does not include {self.acting_permission!r}",
                details={"requiredPermission": self.acting_permission, "projectId": project_id},
            )


async def token_is_live(token_id: str) -> bool:
    """Whether API token ``token_id`` still works (exists, not revoked, not expired).

    For credentials derived from a token (terminal tickets): they die with it. A login
    session's id (its ``token_id``) is checked the same way.
    """
    if session_store.is_session_id(token_id):
        return await session_store.is_live(token_id)
    row = await models.ApiToken.get_or_none(id=token_id, using_db=read_connection())
    if row is None or row.status != "active":
        return False
    return row.expires_at is None or row.expires_at > datetime.now(UTC)


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return value.strip()


_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


async def _session_principal(request: web.Request, secret: str, *, cookie: bool) -> Principal:
    idle = request.app[SETTINGS_KEY].session_idle_seconds
    try:
        found = await session_store.resolve(secret, idle)
    except session_store.SessionProblem as exc:
        raise Unauthorized(str(exc)) from None
    if cookie and request.method not in _SAFE_METHODS:
        # A cookie rides along with any site's request: a mutation must prove it comes from a
        # page that could read the CSRF cookie (same site), and from our own origin.
        if not origin_allowed(request):
            raise Forbidden("cross-origin requests may not use the session cookie")
        if not session_store.csrf_matches(found, request.headers.get(session_store.CSRF_HEADER)):
            raise Forbidden(
                f"a cookie-authenticated {request.method} needs the session's CSRF token in "
                f"the {session_store.CSRF_HEADER} header",
                details={"header": session_store.CSRF_HEADER},
            )
    return Principal(
        kind="user-session",
        actor_id=found.user_id,
        token_id=found.session_id,
        organization_id=found.organization_id,
        permissions=found.permissions,
        server_ids=frozenset(),
        bounds=found.bounds,
        session_expires_at=found.expires_at,
        project_ids=found.bounds.get("projectIds"),  # the granted projects (cached)
        project_grants=found.project_grants,
    )


async def authenticate(request: web.Request) -> Principal:
    """Resolve the request's bearer token or session cookie to a principal, or raise
    ``Unauthorized``."""
    if "Authorization" not in request.headers:
        cookie = request.cookies.get(session_store.SESSION_COOKIE)
        if cookie:
            return await _session_principal(request, cookie, cookie=True)
    token = _bearer(request)
    if token.startswith(session_store.SESSION_TOKEN_PREFIX):
        return await _session_principal(request, token, cookie=False)
    digest = hash_token(token)
    # The read connection: on SQLite the main one may be busy with the sample writer's commit.
    row = await models.ApiToken.get_or_none(token_hash=digest, using_db=read_connection())
    # compare_digest keeps the comparison constant-time even though the lookup was by hash.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise Unauthorized("token is not valid")
    now = datetime.now(UTC)
    if row.status != "active":
        raise Unauthorized("token has been revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("token has expired")
    last = row.last_used_at
    if last is None or (now - last).total_seconds() >= _LAST_USED_GRANULARITY_SECONDS:
        await models.ApiToken.filter(id=row.id).update(last_used_at=now)
    scope = row.scope or {}
    return Principal(
        kind="deploy-token",
        actor_id=row.user_id or row.id,  # type: ignore[attr-defined]
        token_id=row.id,
        organization_id=row.organization_id,  # type: ignore[attr-defined]
        permissions=frozenset(scope.get("permissions", [])),
        server_ids=frozenset(scope.get("deploymentTargetIds", [])),
        bounds=Bounds.of(scope, row.expires_at),
        project_ids=frozenset(scope.get("projectIds", [])),
        environment_ids=frozenset(scope.get("environmentIds", [])),
        resource_ids=frozenset(scope.get("resourceIds", [])),
    )
