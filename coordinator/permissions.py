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
    "dependency-resources:read",
    "dependency-resources:write",
    "storage-volumes:read",
    "storage-volumes:write",
    "certificates:read",
    "certificates:write",
    "scheduled-tasks:read",
    "scheduled-tasks:write",
    "scheduled-tasks:run",
    "notifications:read",
    "notifications:write",
    "operator-work:read",
    "operator-work:write",
    "retention-defaults:read",
    "retention-defaults:write",
    "account:read",
    "account:write",
    "dns-providers:read",
    "dns-providers:write",
    "organizations:read",
    "organizations:write",
    "organization-members:write",
    "backup-targets:read",
    "backup-targets:write",
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
    "dependency-resources:read": (
        "list and show databases (dependency resources), provisioning plans and bindings"
    ),
    "dependency-resources:write": (
        "plan, provision, import, rename and delete databases; bind them to resources"
    ),
    "storage-volumes:read": "list and show storage volumes, their attachments and delete checks",
    "storage-volumes:write": (
        "create, rename, delete and clean up storage volumes; attach and detach them to resources"
    ),
    "certificates:read": "list and show certificates, their facts and failed attempts",
    "certificates:write": "import, issue or renew, retry, revoke and delete certificates",
    "scheduled-tasks:read": "list and show scheduled tasks, their runs and run logs",
    "scheduled-tasks:write": "create, configure, enable, disable and delete scheduled tasks",
    "scheduled-tasks:run": "run a scheduled task now and run one-off commands (`berth run`)",
    "notifications:read": (
        "list and show notification subscriptions and their delivery logs; verify webhook "
        "signatures"
    ),
    "notifications:write": (
        "create, configure, test and delete notification subscriptions (webhooks, Slack, "
        "Discord, e-mail)"
    ),
    "operator-work:read": "list and show Berth's background work (the operator work ledger)",
    "operator-work:write": (
        "cancel, retry, dead-letter, mark recovered and prune background work (each kind also "
        "needs its own write permission)"
    ),
    "retention-defaults:read": "list and show how long each history category is kept",
    "retention-defaults:write": (
        "set retention days per history category and whether the scheduled prune acts"
    ),
    "account:read": "show one's own account profile and login sessions",
    "account:write": (
        "change one's own profile, password and two-factor login; revoke one's sessions, log out"
    ),
    "dns-providers:read": "list and show RFC 2136 DNS providers (TSIG secrets masked)",
    "dns-providers:write": "add and delete RFC 2136 DNS providers used for DNS-01 certificates",
    "organizations:read": "show the organization's profile, its members and invitations",
    "organizations:write": "update the organization's profile; delete it (owners only)",
    "organization-members:write": (
        "invite members, change their roles, remove them and revoke invitations (never above "
        "one's own role; only owners make owners)"
    ),
    "backup-targets:read": "list and show backup targets (S3-compatible buckets; keys masked)",
    "backup-targets:write": "add and delete backup targets for database and volume backups",
}
"""What each permission grants, in the README table's order."""

PERMISSIONS: Final[tuple[str, ...]] = tuple(p for p in get_args(Permission) if p != ALL_PERMISSIONS)
"""Every grantable permission except ``*``, in catalogue order."""

if tuple(GRANTS) != PERMISSIONS:  # pragma: no cover (a catalogue edit missed one of the two)
    raise RuntimeError("coordinator.permissions: GRANTS and Permission list different permissions")
