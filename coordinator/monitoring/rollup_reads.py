"""``runtime-monitoring.rollup/v1``: series per signal from rollup rows (raw rows for minutes)."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from tortoise import Tortoise
from tortoise.expressions import Q, RawSQL
from tortoise.functions import Avg, Sum

from coordinator.db import models
from coordinator.db.monitoring_models import RuntimeSample, SampleRollup
from coordinator.monitoring.metrics import (
    AVERAGED_PATHS,
    SIGNAL_FIELDS,
    accumulate,
    bucket_end,
    floor_time,
)
from coordinator.monitoring.reads import totals_block
from coordinator.monitoring.schemas import (
    DeploymentMarker,
    RollupPoint,
    RollupQuery,
    RollupResponse,
    RollupSeries,
    Scope,
    TopContributor,
)
from coordinator.monitoring.scopes import (
    ResolvedScope,
    freshness_of,
    newest_sample,
    parse_signals,
    parse_window,
    retention_block,
)
from coordinator.settings import Settings

TOP_CONTRIBUTORS: Final = 5
MAX_MARKERS: Final = 200
_CHILD: Final = {
    "all": "resource",
    "server": "resource",
    "project": "resource",
    "environment": "resource",
    "resource": "deployment",
}
_RANK_PATH: Final = "cpu.containerCpuPercent"
_CONTRIBUTOR_PATHS: Final = (
    "cpu.containerCpuPercent",
    "memory.containerUsedBytes",
    "network.rxBytes",
    "network.txBytes",
    "disk.readBytes",
    "disk.writeBytes",
)

# Point figures: the scope's rows of one bucket are one per server; each row's average
# (sums / sample_count) is added across servers, except percent-of-host figures (averaged).
PointValues = dict[str, float]


def _json_number(path: str) -> str:
    """SQL for ``sums[path]`` as a number; paths come from SIGNAL_FIELDS, never from input."""
    if Tortoise.get_connection("default").capabilities.dialect == "sqlite":
        return f'json_extract("sums", \'$."{path}"\')'
    return f"(\"sums\"->>'{path}')::double precision"


def _paths(signals: list[str]) -> list[str]:
    return [f"{signal}.{name}" for signal in signals for name in SIGNAL_FIELDS[signal]]


def _scope_filter(target: ResolvedScope) -> Q:
    if target.kind == "all":
        return Q(scope_kind="server", scope_id__in=target.server_ids)
    return Q(scope_kind=target.kind, scope_id=target.scope_id, server_id__in=target.server_ids)


async def stored_points(
    target: ResolvedScope, bucket: str, start: datetime, to: datetime, paths: list[str]
) -> list[tuple[datetime, int, PointValues]]:
    """Points from rollup rows, aggregated in SQL: one grouped query for all signals."""
    if not target.server_ids:
        return []
    annotations: dict[str, Any] = {"n": Sum("sample_count")}
    for index, path in enumerate(paths):
        per_row = RawSQL(f'{_json_number(path)} / "sample_count"')
        annotations[f"m{index}"] = Avg(per_row) if path in AVERAGED_PATHS else Sum(per_row)  # type: ignore[arg-type]
    rows = (
        await SampleRollup.filter(
            _scope_filter(target),
            bucket=bucket,
            bucket_start__gte=floor_time(start, bucket),
            bucket_start__lt=to,
        )
        .annotate(**annotations)
        .group_by("bucket_start")
        .order_by("bucket_start")
        .values("bucket_start", *annotations)
    )
    points: list[tuple[datetime, int, PointValues]] = []
    for row in rows:
        values = {
            path: float(row[f"m{i}"]) for i, path in enumerate(paths) if row[f"m{i}"] is not None
        }
        points.append((row["bucket_start"].astimezone(UTC), int(row["n"] or 0), values))
    return points


async def minute_points(
    target: ResolvedScope, start: datetime, to: datetime, paths: list[str]
) -> list[tuple[datetime, int, PointValues]]:
    """Points from raw samples (minute buckets exist only within raw retention)."""
    if not target.server_ids:
        return []
    raw = await RuntimeSample.filter(
        server_id__in=target.server_ids,
        observed_at__gte=floor_time(start, "minute"),
        observed_at__lt=to,
    ).values("server_id", "observed_at", "totals", "containers")
    accumulated = accumulate(raw, ["minute"])
    kind = "server" if target.kind == "all" else target.kind
    by_start: dict[datetime, list[tuple[int, dict[str, float]]]] = defaultdict(list)
    for (_, bucket_start, row_kind, scope_id, _server), acc in accumulated.items():
        if row_kind == kind and (target.kind == "all" or scope_id == target.scope_id):
            by_start[bucket_start].append((acc.sample_count, acc.sums))
    return [(s, *combine(rows, paths)) for s, rows in sorted(by_start.items())]


def combine(
    rows: Iterable[tuple[int, dict[str, float]]], paths: list[str]
) -> tuple[int, PointValues]:
    """The same math as ``stored_points``' SQL, for rows already in memory."""
    rows = list(rows)
    count = sum(n for n, _ in rows)
    values: PointValues = {}
    for path in paths:
        per_row = [sums[path] / n for n, sums in rows if path in sums and n]
        if per_row:
            total = sum(per_row)
            values[path] = total / len(per_row) if path in AVERAGED_PATHS else total
    return count, values


def overall(points: list[tuple[datetime, int, PointValues]], paths: list[str]) -> PointValues:
    """The window's figures: the mean over points of each figure."""
    values: PointValues = {}
    for path in paths:
        series = [v[path] for _, _, v in points if path in v]
        if series:
            values[path] = sum(series) / len(series)
    return values


async def top_contributors(
    target: ResolvedScope, bucket: str, start: datetime, to: datetime, signals: list[str]
) -> list[TopContributor]:
    """The child scopes (resources, or deployments of a resource) with most container CPU."""
    child = _CHILD.get(target.kind)
    if child is None or not target.server_ids:
        return []
    stored_bucket = "five-minute" if bucket == "minute" else bucket
    parent = Q(server_id__in=target.server_ids)
    if target.kind in ("project", "environment"):
        resource_ids = await models.Resource.filter(
            **{f"{target.kind}_id": target.scope_id}
        ).values_list("id", flat=True)
        parent &= Q(scope_id__in=[str(r) for r in resource_ids])
    elif target.kind == "resource":
        deployment_ids = await models.Deployment.filter(resource_id=target.scope_id).values_list(
            "id", flat=True
        )
        parent &= Q(scope_id__in=[str(d) for d in deployment_ids])
    annotations: dict[str, Any] = {"n": Sum("sample_count")}
    for index, path in enumerate(_CONTRIBUTOR_PATHS):
        annotations[f"m{index}"] = Sum(RawSQL(_json_number(path)))  # type: ignore[arg-type]
    rows = (
        await SampleRollup.filter(
            parent,
            scope_kind=child,
            bucket=stored_bucket,
            bucket_start__gte=floor_time(start, stored_bucket),
            bucket_start__lt=to,
        )
        .annotate(**annotations)
        .group_by("scope_id", "server_id")
        .values("scope_id", "server_id", *annotations)
    )
    # Average per sample on each server, added across the servers a child ran on.
    figures: dict[str, PointValues] = defaultdict(dict)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        n = int(row["n"] or 0)
        if not n:
            continue
        scope_id = str(row["scope_id"])
        counts[scope_id] += n
        for index, path in enumerate(_CONTRIBUTOR_PATHS):
            value = row[f"m{index}"]
            if value is not None:
                figures[scope_id][path] = figures[scope_id].get(path, 0.0) + float(value) / n
    ranked = sorted(figures, key=lambda s: figures[s].get(_RANK_PATH, 0.0), reverse=True)
    return [
        TopContributor(
            scope=Scope.model_validate({"kind": child, f"{child}_id": scope_id}),
            totals=totals_block(figures[scope_id], signals),
            sample_count=counts[scope_id],
        )
        for scope_id in ranked[:TOP_CONTRIBUTORS]
    ]


async def deployment_markers(
    target: ResolvedScope, start: datetime, to: datetime
) -> list[DeploymentMarker]:
    """Deployments of the scope created or finished in the window (time correlation only)."""
    in_window = Q(created_at__gte=start, created_at__lt=to) | Q(
        finished_at__gte=start, finished_at__lt=to
    )
    if target.kind in ("all", "server"):
        scoped = Q(server_id__in=target.server_ids)
    elif target.kind == "deployment":
        scoped = Q(id=target.scope_id)
    else:
        scoped = Q(**{f"{target.kind}_id": target.scope_id}, server_id__in=target.server_ids)
    rows = (
        await models.Deployment.filter(scoped, in_window).order_by("created_at").limit(MAX_MARKERS)
    )
    return [
        DeploymentMarker(
            deployment_id=row.id,
            resource_id=row.resource_id,
            environment_id=row.environment_id,
            observed_at=row.finished_at or row.started_at or row.created_at,
            status=row.status,
            label=f"deployment {row.id} {row.status}",
        )
        for row in rows
    ]


async def rollup(target: ResolvedScope, query: RollupQuery, settings: Settings) -> RollupResponse:
    """Answer ``GET /runtime-monitoring/rollup``."""
    now = datetime.now(UTC)
    signals = parse_signals(query.signals)
    start, to = parse_window(query, settings, bucket=query.bucket, now=now)
    paths = _paths(signals)
    if query.bucket == "minute":
        points = await minute_points(target, start, to, paths)
    else:
        points = await stored_points(target, query.bucket, start, to, paths)
    series = [
        RollupSeries(
            signal=signal,
            points=[
                RollupPoint(
                    from_=bucket_start,
                    to=bucket_end(bucket_start, query.bucket),
                    sample_count=count,
                    totals=totals_block(values, [signal]),
                )
                for bucket_start, count, values in points
            ],
        )
        for signal in signals
    ]
    newest, interval = await newest_sample(target.server_ids)
    return RollupResponse(
        scope=target.scope,
        from_=start,
        to=to,
        bucket=query.bucket,
        generated_at=now,
        freshness=freshness_of(newest, interval, now),
        partial=False,
        retention=await retention_block(settings),
        series=series,
        totals=totals_block(overall(points, paths), signals),
        top_contributors=(
            await top_contributors(target, query.bucket, start, to, signals)
            if query.include_top_contributors
            else []
        ),
        deployment_markers=(
            await deployment_markers(target, start, to) if query.include_deployment_markers else []
        ),
        warnings=[],
        source_errors=[],
    )
