"""The one permission catalogue: what a token's scope can grant and what each permission grants.

It feeds authorization (``coordinator.auth``), the token scope's OpenAPI enum
(``coordinator.api.schemas``), the CLI's ``--permission`` choices and the README's table (checked by
``tests/unit/test_readme.py``). It imports nothing, so the CLI can use it without the server.
"""

from typing import Final, Literal, get_args

ALL_PERMISSIONS: Final = "*"
"""Grants everything (the first admin's token)."""

Permission = Literal[
    "*",
    "servers:read",
    "servers:write",
    "deploy-tokens:read",
    "deploy-tokens:write",
    "audit-events:read",
    "projects:read",
    "projects:write",
    "resources:read",
    "resources:write",
    "deployments:read",
    "deployments:write",
    "runtime-monitoring:read",
    "runtime-monitoring:write",
    "capacity:read",
    "capacity:prune",
    "runtime-logs:read",
    "terminal-sessions:open",
    "terminal-sessions:manage",
    "domain-bindings:read",
    "domain-bindings:write",
    "domain-bindings:override-ownership",
    "account:read",
    "account:write",
]
"""A permission as tokens carry it on the wire (``*`` or one of ``PERMISSIONS``)."""

GRANTS: Final[dict[Permission, str]] = {
    "servers:read": "list and show servers, their agent status and delete checks",
    "servers:write": (
        "add, rename, deactivate and delete servers; join tokens, agent key rotation, "
        "connectivity tests"
    ),
    "deploy-tokens:read": "list and show API tokens",
    "deploy-tokens:write": (
        "create, rotate and revoke API tokens (never wider than the caller's own)"
    ),
    "audit-events:read": "read the audit trail",
    "projects:read": "list and show projects and environments",
    "projects:write": (
        "create, rename, archive, restore, delete projects; environments and their variables"
    ),
    "resources:read": "list and show resources, their configuration and health",
    "resources:write": (
        "create, configure, archive and delete resources; their variables, secrets and sources"
    ),
    "deployments:read": "list and show deployments, their events and event streams",
    "deployments:write": (
        "deploy, cancel, retry, roll back, redeploy; stop/start/restart a resource's runtime"
    ),
    "runtime-monitoring:read": "usage samples, rollups, usage inspection and thresholds",
    "runtime-monitoring:write": "prune stored samples, set thresholds",
    "capacity:read": "inspect a server's disk, memory, CPU and Docker usage",
    "capacity:prune": "dry-run or prune Berth's leftovers on a server",
    "runtime-logs:read": "read and follow a resource's runtime logs",
    "terminal-sessions:open": "open, list, attach to and close one's own terminal sessions",
    "terminal-sessions:manage": (
        "close idle and detached-past-grace terminal sessions now (the expiry sweep)"
    ),
    "domain-bindings:read": (
        "list and show domain bindings, their DNS observation, route readiness and delete checks"
    ),
    "domain-bindings:write": (
        "bind, route, verify and delete custom domains; prove ownership by DNS TXT or HTTP token"
    ),
    "domain-bindings:override-ownership": (
        "confirm a domain's ownership manually (audited, with a reason)"
    ),
    "account:read": "show one's own account profile and login sessions",
    "account:write": (
        "change one's own profile, password and two-factor login; revoke one's sessions, log out"
    ),
}
"""What each permission grants, in the README table's order."""

PERMISSIONS: Final[tuple[str, ...]] = tuple(p for p in get_args(Permission) if p != ALL_PERMISSIONS)
"""Every grantable permission except ``*``, in catalogue order."""

if tuple(GRANTS) != PERMISSIONS:  # pragma: no cover (a catalogue edit missed one of the two)
    raise RuntimeError("coordinator.permissions: GRANTS and Permission list different permissions")
