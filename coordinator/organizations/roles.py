"""Organization roles and what each may do, derived from the one permission catalogue.

Nothing is copied: a viewer gets every ``:read`` permission, a member adds the writes that
build and ship software, admins and owners get everything (``*``). What an admin may not do
(make owners, transfer ownership, delete the organization) are membership rules
(``coordinator.organizations.members``), not permissions. Terminal access is its own right:
only admins and owners open shells.
"""

from collections.abc import Mapping
from typing import Final, Literal, get_args

from coordinator.permissions import ALL_PERMISSIONS, PERMISSIONS
from coordinator.token_scope import Bounds

Role = Literal["owner", "admin", "member", "viewer"]
ROLES: Final[tuple[str, ...]] = get_args(Role)
"""Most to least powerful."""

# What a session whose user is no member of its organization may still do: see and manage its
# own account, and switch to an organization it belongs to.
ACCOUNT_ONLY: Final = frozenset({"account:read", "account:write"})

_MEMBER_WRITES: Final = frozenset(
    {
        "projects:write",
        "resources:write",
        "deployments:write",
        "deploy-tokens:write",
        "domain-bindings:write",
        "dependency-resources:write",
        "storage-volumes:write",
        "certificates:write",
        "scheduled-tasks:write",
        "scheduled-tasks:run",
    }
)

_READS: Final = frozenset(p for p in PERMISSIONS if p.endswith(":read"))

ROLE_PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "owner": frozenset({ALL_PERMISSIONS}),
    "admin": frozenset({ALL_PERMISSIONS}),
    "member": _READS | ACCOUNT_ONLY | _MEMBER_WRITES,
    "viewer": _READS | ACCOUNT_ONLY,
}


def permissions_of(role: str | None) -> frozenset[str]:
    """What ``role`` grants (no membership: only one's own account)."""
    if role is None:
        return ACCOUNT_ONLY
    return ROLE_PERMISSIONS.get(role, ACCOUNT_ONLY)


def rank(role: str) -> int:
    """Higher is more powerful (owner 3 ... viewer 0); unknown roles rank below viewer."""
    return len(ROLES) - 1 - ROLES.index(role) if role in ROLES else -1


if set(_MEMBER_WRITES) - set(PERMISSIONS):  # pragma: no cover (a catalogue rename missed here)
    raise RuntimeError("coordinator.organizations.roles names a permission the catalogue lacks")


GRANTABLE: Final = ("member", "viewer")
"""Roles a per-project grant may give (admins and owners reach every project)."""


def grants_of(project_roles: Mapping[str, str] | None) -> dict[str, frozenset[str]]:
    """Per-project grants as permissions ``{projectId: permissions}`` (empty: no grants)."""
    return {project: permissions_of(role) for project, role in (project_roles or {}).items()}


def bounds_of(role: str | None, project_roles: Mapping[str, str] | None) -> Bounds:
    """What a user acting with ``role`` (and its grants) may hand to a token it mints: a token
    scope cannot say "write here, read there", so with grants it gets the weakest grant's
    rights, in the granted projects only."""
    allowed = set(permissions_of(role))
    if not project_roles:
        return Bounds.of({"permissions": sorted(allowed)}, None)
    for granted in grants_of(project_roles).values():
        allowed = set(granted) if ALL_PERMISSIONS in allowed else allowed & granted
    return Bounds.of({"permissions": sorted(allowed), "projectIds": sorted(project_roles)}, None)
