"""Read requests: scope resolution (visibility), windows, signals, freshness and retention."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from tortoise.expressions import Q, Subquery

from coordinator.auth import Principal
from coordinator.db import models, read_connection
from coordinator.db.monitoring_models import SampleRollup
from coordinator.lookup import (
    get_deployment,
    get_environment,
    get_project,
    get_resource,
    get_server,
)
from coordinator.monitoring.metrics import BUCKET_SECONDS, SIGNALS
from coordinator.monitoring.sample_clock import SampleClock
from coordinator.monitoring.schemas import MonitoringQuery, Retention, Scope
from coordinator.server_roster import ServerRoster
from coordinator.settings import Settings
from shared.errors import InvalidRequest

Freshness = Literal["live", "stale", "empty"]
MAX_WINDOW: Final = timedelta(days=31)
MAX_POINTS: Final = 2100
DEFAULT_WINDOW: Final[dict[str | None, timedelta]] = {
    None: timedelta(hours=1),
    "minute": timedelta(hours=1),
    "five-minute": timedelta(hours=24),
    "hour": timedelta(days=7),
}
# A scope whose newest sample is older than this many sample intervals is "stale".
LIVE_INTERVALS: Final = 3
# ... and never sooner than this: an agent's first sample spans only its one-second priming
# read, while the next one is due a whole sampling interval (15 s by default) later.
MIN_LIVE_SECONDS: Final = 45.0


def live_window(interval: float) -> float:
    """How long after it was observed a sample with span ``interval`` still counts as live."""
    return max(LIVE_INTERVALS * interval, MIN_LIVE_SECONDS)


_ID_FIELD: Final = {
    "server": "server_id",
    "project": "project_id",
    "environment": "environment_id",
    "resource": "resource_id",
    "deployment": "deployment_id",
}


def _problem(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, details={"problems": [{"field": field, "message": message}]})


@dataclass(frozen=True)
class ResolvedScope:
    """A scope the caller may see, and the servers whose samples can feed it."""

    scope: Scope
    kind: str
    scope_id: str
    server_ids: list[str]
    # Set when the servers are exactly the organization's (scope "all", no server restriction):
    # queries then select them with a subquery instead of binding every id.
    organization_id: str | None = None


def server_filter(target: ResolvedScope, field: str = "server_id") -> Q:
    """``field`` is one of the scope's servers (a subquery for a whole organization)."""
    condition: dict[str, Any] = {f"{field}__in": target.server_ids}
    if target.organization_id is not None:
        servers = models.Server.filter(organization_id=target.organization_id).values("id")
        condition = {f"{field}__in": Subquery(servers)}
    return Q(**condition)


async def resolve_scope(
    actor: Principal,
    query: MonitoringQuery,
    *,
    allow_all: bool,
    roster: ServerRoster,
    recent: Mapping[tuple[str, str], set[str]] | None = None,
) -> ResolvedScope:
    """Check the scope's id is given and visible (404 otherwise); find its candidate servers.

    ``roster`` answers which servers an organization has (scope ``all``); ``recent`` maps
    container scopes to the servers recent samples showed them on.
    """
    kind = query.scope_kind
    reads = read_connection()  # committed rows; never waits behind the sample writer
    if kind == "all":
        if not allow_all:
            raise _problem("scope.kind", "scope.kind 'all' is only available for rollups")
        ids = await roster.ids(actor.organization_id)
        visible = [i for i in ids if actor.can_see_server(i)] if actor.server_ids else list(ids)
        whole = None if actor.server_ids else actor.organization_id
        return ResolvedScope(Scope(kind="all"), "all", "", visible, whole)
    scope_id = getattr(query, _ID_FIELD[kind])
    if not scope_id:
        field = f"scope.{kind}Id"
        raise _problem(field, f"{field} is required when scope.kind is {kind!r}")
    scope = Scope.model_validate({"kind": kind, _ID_FIELD[kind]: scope_id})
    if kind == "server":
        _ = await get_server(actor, scope_id, reads)
        return ResolvedScope(scope, kind, scope_id, [scope_id])
    if kind == "project":
        _ = await get_project(actor, scope_id, reads)
    elif kind == "environment":
        _ = await get_environment(actor, scope_id, reads)
    elif kind == "resource":
        _ = await get_resource(actor, scope_id, reads)
    else:
        _ = await get_deployment(actor, scope_id, reads)
    servers = set(await _servers_of(kind, scope_id)) | (recent or {}).get((kind, scope_id), set())
    return ResolvedScope(
        scope, kind, scope_id, sorted(s for s in servers if actor.can_see_server(s))
    )


async def _servers_of(kind: str, scope_id: str) -> list[str]:
    """Servers a container scope ran on: from its rollups and from its deployments."""
    from_rollups = await (
        SampleRollup.filter(scope_kind=kind, scope_id=scope_id)
        .using_db(read_connection())
        .distinct()
        .values_list("server_id", flat=True)
    )
    deployment_filter: dict[str, Any] = (
        {"id": scope_id} if kind == "deployment" else {_ID_FIELD[kind]: scope_id}
    )
    from_deployments = await (
        models.Deployment.filter(**deployment_filter)
        .using_db(read_connection())
        .distinct()
        .values_list("server_id", flat=True)
    )
    return sorted({str(s) for s in [*from_rollups, *from_deployments]})


def parse_signals(raw: list[str] | str | None) -> list[str]:
    """Signals from a comma list and/or repeated parameter; all of them when none is given."""
    if raw is None:
        return list(SIGNALS)
    values = [raw] if isinstance(raw, str) else raw
    wanted = [part.strip() for value in values for part in value.split(",") if part.strip()]
    unknown = [s for s in wanted if s not in SIGNALS]
    if unknown:
        raise _problem("signals", f"unknown signal(s) {unknown}; known: {', '.join(SIGNALS)}")
    return [s for s in SIGNALS if s in wanted] or list(SIGNALS)


def parse_window(
    query: MonitoringQuery, settings: Settings, *, bucket: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """Validate ``window.from``/``window.to`` (defaults per bucket) against the limits."""
    to = (query.window_to or now).astimezone(UTC)
    start = (query.window_from or to - DEFAULT_WINDOW[bucket]).astimezone(UTC)
    if start >= to:
        raise _problem("window.from", "window.from must be before window.to")
    if to - start > MAX_WINDOW:
        raise _problem("window.from", f"the window may span at most {MAX_WINDOW.days} days")
    if bucket is not None:
        points = (to - start).total_seconds() / BUCKET_SECONDS[bucket]
        if points > MAX_POINTS:
            raise _problem("bucket", f"{points:.0f} {bucket} buckets; at most {MAX_POINTS}")
        if bucket == "minute":
            oldest = now - timedelta(hours=settings.raw_sample_retention_hours)
            if start < oldest:
                raise _problem(
                    "window.from",
                    "minute buckets come from raw samples, kept "
                    f"{settings.raw_sample_retention_hours:g} h; use five-minute or hour",
                )
    return start, to


async def retention_block(settings: Settings, clock: SampleClock) -> Retention:
    """The raw retention setting and the span raw samples currently cover."""
    oldest, newest = await clock.span()
    return Retention(
        raw_retention_hours=settings.raw_sample_retention_hours,
        retained_from=oldest,
        retained_to=newest,
    )


def freshness_of(newest: datetime | None, interval: float | None, now: datetime) -> Freshness:
    """``live`` when the newest sample is younger than a few intervals, else ``stale``/``empty``."""
    if newest is None or interval is None:
        return "empty"
    return "live" if (now - newest).total_seconds() < live_window(interval) else "stale"
