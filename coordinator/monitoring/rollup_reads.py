"""``runtime-monitoring.rollup/v1``: series per signal from rollup rows (raw rows for minutes)."""

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final, TypeVar

from pydantic import TypeAdapter
from tortoise import Tortoise
from tortoise.expressions import Q, RawSQL
from tortoise.functions import Avg, Sum

from coordinator.db import models, read_connection
from coordinator.db.monitoring_models import RuntimeSample, SampleRollup
from coordinator.monitoring.metrics import (
    AVERAGED_PATHS,
    BUCKET_SECONDS,
    SIGNAL_FIELDS,
    accumulate,
    bucket_end,
    floor_time,
)
from coordinator.monitoring.reads import totals_block
from coordinator.monitoring.rollup_cache import PointFigures, PointValues, RollupReadCache, SpanSums
from coordinator.monitoring.schemas import (
    DeploymentMarker,
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
    server_filter,
)
from coordinator.settings import Settings

Found = TypeVar("Found")
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


def _json_number(path: str) -> str:
    """SQL for ``sums[path]`` as a number; paths come from SIGNAL_FIELDS, never from input."""
    if Tortoise.get_connection("default").capabilities.dialect == "sqlite":
        return f'json_extract("sums", \'$."{path}"\')'
    return f"(\"sums\"->>'{path}')::double precision"


def _paths(signals: list[str]) -> list[str]:
    return [f"{signal}.{name}" for signal in signals for name in SIGNAL_FIELDS[signal]]


def _scope_filter(target: ResolvedScope) -> Q:
    if target.kind == "all":  # server rows: scope_id == server_id
        return Q(scope_kind="server") & server_filter(target)
    return Q(scope_kind=target.kind, scope_id=target.scope_id) & server_filter(target)


def _bucket_starts(start: datetime, to: datetime, bucket: str) -> list[datetime]:
    """Every bucket start of the window, oldest first."""
    step = timedelta(seconds=BUCKET_SECONDS[bucket])
    starts: list[datetime] = []
    moment = floor_time(start, bucket)
    while moment < to:
        starts.append(moment)
        moment += step
    return starts


async def stored_points(
    target: ResolvedScope,
    bucket: str,
    start: datetime,
    to: datetime,
    paths: list[str],
    cache: RollupReadCache | None = None,
) -> list[tuple[datetime, int, PointValues]]:
    """Points from rollup rows: cached ones as they are, the rest (normally the buckets the
    last rollup pass wrote) aggregated in one SQL query over their span."""
    if not target.server_ids:
        return []
    starts = _bucket_starts(start, to, bucket)
    key = (target.kind, target.scope_id, tuple(target.server_ids), tuple(paths))
    known = cache.known_points(bucket, key) if cache is not None else {}
    missing = [moment for moment in starts if moment not in known]
    if missing:
        generation = cache.generation if cache is not None else 0
        first, last = missing[0], bucket_end(missing[-1], bucket)
        queried = await _query_points(target, bucket, first, last, paths)
        found: dict[datetime, PointFigures | None] = {
            moment: queried.get(moment) for moment in starts if first <= moment < last
        }
        if cache is not None:
            cache.store_points(bucket, key, generation, found)
        known = {**known, **found}
    points: list[tuple[datetime, int, PointValues]] = []
    for moment in starts:
        figures = known.get(moment)
        if figures is not None:
            points.append((moment, *figures))
    return points


async def _query_points(
    target: ResolvedScope, bucket: str, start: datetime, to: datetime, paths: list[str]
) -> dict[datetime, PointFigures]:
    """Points of buckets ``[start, to)`` aggregated in SQL: one grouped query for all signals."""
    annotations: dict[str, Any] = {"n": Sum("sample_count")}
    for index, path in enumerate(paths):
        per_row = RawSQL(f'{_json_number(path)} / "sample_count"')
        annotations[f"m{index}"] = Avg(per_row) if path in AVERAGED_PATHS else Sum(per_row)  # type: ignore[arg-type]
    rows = (
        await SampleRollup.filter(
            _scope_filter(target),
            bucket=bucket,
            bucket_start__gte=start,
            bucket_start__lt=to,
        )
        .using_db(read_connection())
        .annotate(**annotations)
        .group_by("bucket_start")
        .values("bucket_start", *annotations)
    )
    points: dict[datetime, PointFigures] = {}
    for row in rows:
        values = {
            path: float(row[f"m{i}"]) for i, path in enumerate(paths) if row[f"m{i}"] is not None
        }
        points[row["bucket_start"].astimezone(UTC)] = (int(row["n"] or 0), values)
    return points


async def minute_points(
    target: ResolvedScope, start: datetime, to: datetime, paths: list[str]
) -> list[tuple[datetime, int, PointValues]]:
    """Points from raw samples (minute buckets exist only within raw retention)."""
    if not target.server_ids:
        return []
    raw = (
        await RuntimeSample.filter(
            server_id__in=target.server_ids,
            observed_at__gte=floor_time(start, "minute"),
            observed_at__lt=to,
        )
        .using_db(read_connection())
        .values("server_id", "observed_at", "totals", "containers")
    )
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
    target: ResolvedScope,
    bucket: str,
    start: datetime,
    to: datetime,
    signals: list[str],
    cache: RollupReadCache | None = None,
) -> list[TopContributor]:
    """The child scopes (resources, or deployments of a resource) with most container CPU."""
    child = _CHILD.get(target.kind)
    if child is None or not target.server_ids:
        return []
    stored_bucket = "five-minute" if bucket == "minute" else bucket
    parent = server_filter(target)
    parent_ids: tuple[str, ...] = ()
    reads = read_connection()
    if target.kind in ("project", "environment"):
        resource_ids = (
            await models.Resource.filter(**{f"{target.kind}_id": target.scope_id})
            .using_db(reads)
            .values_list("id", flat=True)
        )
        parent_ids = tuple(sorted(str(r) for r in resource_ids))
        parent &= Q(scope_id__in=list(parent_ids))
    elif target.kind == "resource":
        deployment_ids = (
            await models.Deployment.filter(resource_id=target.scope_id)
            .using_db(reads)
            .values_list("id", flat=True)
        )
        parent_ids = tuple(sorted(str(d) for d in deployment_ids))
        parent &= Q(scope_id__in=list(parent_ids))
    first = floor_time(start, stored_bucket)
    # Buckets before the current one are settled: their sums are cached as one span (a late
    # sample that lands in one of them invalidates the span). The rest is summed live.
    settled = min(max(floor_time(datetime.now(UTC), stored_bucket), first), to)
    key = (target.kind, target.scope_id, tuple(target.server_ids), parent_ids)
    sums = cache.span(stored_bucket, key, first, settled) if cache is not None else None
    if sums is None:
        generation = cache.generation if cache is not None else 0
        sums = await _contributor_sums(parent, child, stored_bucket, first, settled)
        if cache is not None:
            cache.store_span(stored_bucket, key, generation, (first, settled), sums)
    live = await _contributor_sums(parent, child, stored_bucket, settled, to)
    pairs: dict[tuple[str, str], tuple[int, list[float | None]]] = {}
    for part in (sums, live):
        for pair, (n, values) in part.items():
            count, totals = pairs.get(pair, (0, [None] * len(values)))
            pairs[pair] = (
                count + n,
                [
                    value if total is None else total if value is None else total + value
                    for total, value in zip(totals, values, strict=True)
                ],
            )
    # Average per sample on each server, added across the servers a child ran on.
    figures: dict[str, PointValues] = defaultdict(dict)
    counts: dict[str, int] = defaultdict(int)
    for (scope_id, _server), (n, totals) in pairs.items():
        if not n:
            continue
        counts[scope_id] += n
        for path, total in zip(_CONTRIBUTOR_PATHS, totals, strict=True):
            if total is not None:
                figures[scope_id][path] = figures[scope_id].get(path, 0.0) + total / n
    ranked = sorted(figures, key=lambda s: figures[s].get(_RANK_PATH, 0.0), reverse=True)
    return [
        TopContributor(
            scope=Scope.model_validate({"kind": child, f"{child}_id": scope_id}),
            totals=totals_block(figures[scope_id], signals),
            sample_count=counts[scope_id],
        )
        for scope_id in ranked[:TOP_CONTRIBUTORS]
    ]


async def _contributor_sums(
    parent: Q, child: str, bucket: str, start: datetime, to: datetime
) -> SpanSums:
    """Sample count and sums per (child scope, server) over buckets ``[start, to)``."""
    if start >= to:
        return {}
    annotations: dict[str, Any] = {"n": Sum("sample_count")}
    for index, path in enumerate(_CONTRIBUTOR_PATHS):
        annotations[f"m{index}"] = Sum(RawSQL(_json_number(path)))  # type: ignore[arg-type]
    rows = (
        await SampleRollup.filter(
            parent,
            scope_kind=child,
            bucket=bucket,
            bucket_start__gte=start,
            bucket_start__lt=to,
        )
        .using_db(read_connection())
        .annotate(**annotations)
        .group_by("scope_id", "server_id")
        .values("scope_id", "server_id", *annotations)
    )
    return {
        (str(row["scope_id"]), str(row["server_id"])): (
            int(row["n"] or 0),
            tuple(
                None if row[f"m{i}"] is None else float(row[f"m{i}"])
                for i in range(len(_CONTRIBUTOR_PATHS))
            ),
        )
        for row in rows
    }


async def deployment_markers(
    target: ResolvedScope, start: datetime, to: datetime
) -> list[DeploymentMarker]:
    """Deployments of the scope created or finished in the window (time correlation only)."""
    in_window = Q(created_at__gte=start, created_at__lt=to) | Q(
        finished_at__gte=start, finished_at__lt=to
    )
    if target.kind in ("all", "server"):
        scoped = server_filter(target)
    elif target.kind == "deployment":
        scoped = Q(id=target.scope_id)
    else:
        scoped = Q(**{f"{target.kind}_id": target.scope_id}, server_id__in=target.server_ids)
    rows = (
        await models.Deployment.filter(scoped, in_window)
        .using_db(read_connection())
        .order_by("created_at")
        .limit(MAX_MARKERS)
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


def _series_of(
    points: list[tuple[datetime, int, PointValues]], signals: list[str], bucket: str
) -> list[RollupSeries]:
    """Every signal's series, validated in one call (a week of hours is about a thousand
    points; one model per point from Python cost twice as much)."""
    step = timedelta(seconds=BUCKET_SECONDS[bucket])
    raw = [
        {
            "signal": signal,
            "points": [
                {
                    "from": start,
                    "to": start + step,
                    "sampleCount": count,
                    "totals": _totals(values, signal),
                }
                for start, count, values in points
            ],
        }
        for signal in signals
    ]
    return _series_adapter().validate_python(raw)


def _totals(values: PointValues, signal: str) -> dict[str, dict[str, float]]:
    """A point's totals block of one signal (empty when the point has none of its figures)."""
    figures = {
        name: values[path]
        for name in SIGNAL_FIELDS[signal]
        if (path := f"{signal}.{name}") in values
    }
    return {signal: figures} if figures else {}


@cache
def _series_adapter() -> TypeAdapter[list[RollupSeries]]:
    return TypeAdapter(list[RollupSeries])


async def _none_found(kind: type[Found]) -> list[Found]:
    """An empty result for a part the query did not ask for."""
    return []


async def rollup(
    target: ResolvedScope,
    query: RollupQuery,
    settings: Settings,
    cache: RollupReadCache | None = None,
) -> RollupResponse:
    """Answer ``GET /runtime-monitoring/rollup``."""
    now = datetime.now(UTC)
    signals = parse_signals(query.signals)
    start, to = parse_window(query, settings, bucket=query.bucket, now=now)
    paths = _paths(signals)
    # The parts are independent: asked for together, each waits for the database once
    # instead of one after the other.
    points_read = (
        minute_points(target, start, to, paths)
        if query.bucket == "minute"
        else stored_points(target, query.bucket, start, to, paths, cache)
    )
    contributors_read = (
        top_contributors(target, query.bucket, start, to, signals, cache)
        if query.include_top_contributors
        else _none_found(TopContributor)
    )
    markers_read = (
        deployment_markers(target, start, to)
        if query.include_deployment_markers
        else _none_found(DeploymentMarker)
    )
    points, (newest, interval), retention, contributors, markers = await asyncio.gather(
        points_read,
        newest_sample(target),
        retention_block(settings),
        contributors_read,
        markers_read,
    )
    series = _series_of(points, signals, query.bucket)
    return RollupResponse(
        scope=target.scope,
        from_=start,
        to=to,
        bucket=query.bucket,
        generated_at=now,
        freshness=freshness_of(newest, interval, now),
        partial=False,
        retention=retention,
        series=series,
        totals=totals_block(overall(points, paths), signals),
        top_contributors=contributors,
        deployment_markers=markers,
        warnings=[],
        source_errors=[],
    )
