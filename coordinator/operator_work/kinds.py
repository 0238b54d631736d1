"""The operator work ledger's shape and its one registry of work kinds.

A work kind (deployments, notification deliveries; later task runs, backups, certificate
issuance) registers a ``WorkSource`` under the id prefix of its rows. The ledger lists every
source's items in the reference shape and routes each action to the source that owns the id;
a source refuses (409) an action its work does not support, saying why.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from coordinator.auth import Principal
from shared.errors import NotFound

WorkKind = Literal[
    "deployment",
    "proxy-bootstrap",
    "certificate",
    "remote-state",
    "route-realization",
    "runtime-maintenance",
    "system",
    # Berth's own (the reference has no scheduled tasks in its ledger).
    "scheduled-task-run",
    "backup",
    "restore",
    "backup-verification",
]
WorkStatus = Literal[
    "pending",
    "running",
    "retry-scheduled",
    "succeeded",
    "failed",
    "canceled",
    "dead-lettered",
    "unknown",
]
FINISHED: Final = frozenset({"succeeded", "failed", "canceled", "dead-lettered"})


@dataclass(frozen=True)
class WorkItem:
    """One unit of background work as the ledger shows it."""

    id: str
    kind: WorkKind
    status: WorkStatus
    operation_key: str
    phase: str | None
    step: str | None
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    error_code: str | None = None
    error_category: str | None = None
    retriable: bool = False
    next_actions: list[str] = field(default_factory=list)
    safe_details: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkFilters:
    """The list's filters."""

    kind: str | None = None
    status: str | None = None
    resource_id: str | None = None
    server_id: str | None = None
    deployment_id: str | None = None
    limit: int = 100


class Actions(Protocol):
    """What an action needs from the route: who, the request id, the app's parts."""

    @property
    def actor(self) -> Principal: ...
    @property
    def request_id(self) -> str: ...


class WorkSource(Protocol):
    """A kind of work the ledger lists and acts on."""

    kind: WorkKind
    prefix: str

    async def listed(self, actor: Principal, filters: WorkFilters) -> list[WorkItem]:
        """The newest items the caller may see that match ``filters``."""
        ...

    async def get(self, actor: Principal, work_id: str) -> WorkItem:
        """One item the caller may see, else 404."""
        ...

    async def cancel(self, call: Any, work_id: str, reason: str | None) -> datetime: ...
    async def retry(self, call: Any, work_id: str) -> str: ...
    async def dead_letter(self, call: Any, work_id: str, reason: str) -> datetime: ...
    async def mark_recovered(self, call: Any, work_id: str) -> datetime: ...
    async def prune(
        self, actor: Principal, before: datetime, statuses: frozenset[str], dry_run: bool
    ) -> dict[str, int]:
        """Counts by status of what was (or, in a dry run, would be) removed."""
        ...


_SOURCES: dict[str, WorkSource] = {}


def register(source: WorkSource) -> None:
    """Add a work kind (once per id prefix)."""
    if source.prefix in _SOURCES:
        raise ValueError(f"two work sources claim the {source.prefix!r} id prefix")
    _SOURCES[source.prefix] = source


def sources() -> list[WorkSource]:
    """Every registered source, in registration order."""
    return list(_SOURCES.values())


def owner(work_id: str) -> WorkSource:
    """The source whose rows carry ``work_id``'s prefix, else 404."""
    source = _SOURCES.get(work_id.split("_", 1)[0])
    if source is None:
        raise NotFound(f"operator work {work_id!r} not found")
    return source


async def gather(actor: Principal, filters: WorkFilters) -> list[WorkItem]:
    """Every source's matching items, most recently updated first, at most ``limit``."""
    items: list[WorkItem] = []
    for source in sources():
        if filters.kind and filters.kind != source.kind:
            continue
        items.extend(await source.listed(actor, filters))
    items.sort(key=lambda item: (item.updated_at, item.id), reverse=True)
    return items[: filters.limit]
