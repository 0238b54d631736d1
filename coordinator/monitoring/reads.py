"""``runtime-monitoring.samples.list/v1``: stored raw samples seen through a scope."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from coordinator.db.monitoring_models import RuntimeSample
from coordinator.monitoring.metrics import (
    SIGNAL_FIELDS,
    container_metrics,
    containers_of,
    host_metrics,
)
from coordinator.monitoring.sample_clock import SampleClock
from coordinator.monitoring.schemas import (
    MonitoringWarning,
    SampleItem,
    SampleLabels,
    SamplesList,
    SamplesQuery,
    Scope,
    ScopeEvidence,
    TotalsBlock,
)
from coordinator.monitoring.scopes import (
    ResolvedScope,
    freshness_of,
    parse_signals,
    parse_window,
    retention_block,
)
from coordinator.settings import Settings

# A gap longer than this many sample intervals between two samples is reported as missing data.
GAP_INTERVALS: Final = 2.0
MAX_GAP_WARNINGS: Final = 20
# Container scopes scan this many raw rows per returned sample at most (samples of a server
# that do not contain the scope's containers are skipped).
_SCAN_FACTOR: Final = 4
_SCAN_CAP: Final = 10_000


def totals_block(values: Mapping[str, float], signals: list[str]) -> TotalsBlock:
    """Build the totals block from ``signal.figure`` paths, keeping only ``signals``."""
    nested: dict[str, dict[str, float]] = {}
    for path, value in values.items():
        signal, _, name = path.partition(".")
        if signal in signals and name in SIGNAL_FIELDS.get(signal, ()):
            nested.setdefault(signal, {})[name] = value
    return TotalsBlock.model_validate(nested)


def gap_warnings(rows: Sequence[Mapping[str, Any]], scope: Scope) -> list[MonitoringWarning]:
    """``missing-samples`` for every gap over ``GAP_INTERVALS`` intervals, per server."""
    warnings: list[MonitoringWarning] = []
    last: dict[str, datetime] = {}
    for row in sorted(rows, key=lambda r: r["observed_at"]):
        server_id = str(row["server_id"])
        previous = last.get(server_id)
        observed: datetime = row["observed_at"]
        limit = GAP_INTERVALS * float(row["interval_seconds"])
        gap = previous is not None and (observed - previous).total_seconds() > limit
        if gap and previous is not None and len(warnings) < MAX_GAP_WARNINGS:
            warnings.append(
                MonitoringWarning(
                    code="missing-samples",
                    message=(
                        f"no samples from server {server_id} between "
                        f"{previous.isoformat()} and {observed.isoformat()}"
                    ),
                    scope=scope,
                )
            )
        last[server_id] = observed
    return warnings


def _item(
    row: Mapping[str, Any], target: ResolvedScope, signals: list[str], now: datetime
) -> SampleItem | None:
    server_id = str(row["server_id"])
    evidence: dict[str, Any] = {"scope": target.scope, "server_id": server_id}
    if target.kind == "server":
        values = host_metrics(row["totals"])
        runtime_id = None
    else:
        members = containers_of(row["containers"], target.kind, target.scope_id)
        if not members:
            return None
        values = container_metrics(members)
        first = members[0]
        evidence.update(
            project_id=first.get("projectId"),
            environment_id=first.get("environmentId"),
            resource_id=first.get("resourceId"),
            deployment_id=first.get("deploymentId") if len(members) == 1 else None,
        )
        runtime_id = str(first.get("containerId")) if len(members) == 1 else None
    interval = float(row["interval_seconds"])
    sample_warnings = [
        MonitoringWarning(code="agent-warning", message=str(text), scope=target.scope)
        for text in row["warnings"]
    ]
    return SampleItem(
        sample_id=str(row["sample_id"]),
        observed_at=row["observed_at"],
        collected_at=row["received_at"],
        interval_seconds=interval,
        scope_evidence=ScopeEvidence.model_validate(evidence),
        totals=totals_block(values, signals),
        freshness=freshness_of(row["observed_at"], interval, now),
        partial=bool(row["warnings"]),
        labels=SampleLabels(runtime_id=runtime_id),
        warnings=sample_warnings,
        source_errors=[],
    )


async def list_samples(
    target: ResolvedScope, query: SamplesQuery, settings: Settings, clock: SampleClock
) -> SamplesList:
    """The newest ``limit`` samples of the scope in the window, oldest first."""
    now = datetime.now(UTC)
    signals = parse_signals(query.signals)
    start, to = parse_window(query, settings, bucket=None, now=now)
    scan = query.limit if target.kind == "server" else min(_SCAN_CAP, query.limit * _SCAN_FACTOR)
    rows: list[dict[str, Any]] = []
    if target.server_ids:
        rows = (
            await RuntimeSample.filter(
                server_id__in=target.server_ids, observed_at__gte=start, observed_at__lt=to
            )
            .order_by("-observed_at")
            .limit(scan)
            .values(
                "sample_id",
                "server_id",
                "observed_at",
                "received_at",
                "interval_seconds",
                "totals",
                "containers",
                "warnings",
            )
        )
    items: list[SampleItem] = []
    kept: list[dict[str, Any]] = []
    for row in rows:
        item = _item(row, target, signals, now)
        if item is not None and len(items) < query.limit:
            items.append(item)
            kept.append(row)
    items.reverse()
    newest = items[-1] if items else None
    return SamplesList(
        scope=target.scope,
        from_=start,
        to=to,
        generated_at=now,
        freshness=freshness_of(
            newest.observed_at if newest else None, newest.interval_seconds if newest else None, now
        ),
        partial=any(item.partial for item in items),
        retention=await retention_block(settings, clock),
        samples=items,
        warnings=gap_warnings(kept, target.scope),
        source_errors=[],
    )
