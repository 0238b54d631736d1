"""``runtime-monitoring.rollup/v1``: series per signal from rollup rows (raw rows for minutes)."""

from collections import OrderedDict, defaultdict
from collections.abc import Hashable, Iterable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final

from pydantic import TypeAdapter
from tortoise.expressions import Q, RawSQL
from tortoise.functions import Avg, Sum

from coordinator.db import models, read_connection
from coordinator.db.monitoring_models import RuntimeSample, SampleRollup, sums_number_sql
from coordinator.monitoring.contributors import top_contributors
from coordinator.monitoring.metrics import (
    AVERAGED_PATHS,
    BUCKET_SECONDS,
    SIGNAL_FIELDS,
    accumulate,
    bucket_end,
    floor_time,
)
from coordinator.monitoring.reads import totals_block
from coordinator.monitoring.rollup_cache import PointFigures, PointValues, RollupReadCache
from coordinator.monitoring.sample_clock import SampleClock
from coordinator.monitoring.schemas import (
    DeploymentMarker,
    RollupQuery,
    RollupResponse,
    RollupSeries,
)
from coordinator.monitoring.scopes import (
    ResolvedScope,
    freshness_of,
    parse_signals,
    parse_window,
    retention_block,
    server_filter,
)
from coordinator.settings import Settings

# Built at import, not on the first request (the coordinator imports this module at start).
_SERIES: Final = TypeAdapter(list[RollupSeries])
MAX_MARKERS: Final = 200
# Answers whose validated series are kept (a week of hours is about 1 MB of models each).
SERIES_MEMO_ENTRIES: Final = 8
PointList = list[tuple[datetime, int, PointValues]]
# Point figures: the scope's rows of one bucket are one per server; each row's average
# (sums / sample_count) is added across servers, except percent-of-host figures (averaged).


# (figure name, metric path) per signal, built once: ``_totals`` runs for every point.
_FIELD_PATHS: Final = {
    signal: tuple((name, f"{signal}.{name}") for name in names)
    for signal, names in SIGNAL_FIELDS.items()
}


def _paths(signals: list[str]) -> list[str]:
    return [path for signal in signals for _, path in _FIELD_PATHS[signal]]


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
    cache: RollupReadCache,
) -> list[tuple[datetime, int, PointValues]]:
    """Points from rollup rows: cached ones as they are, the rest (normally the buckets the
    last rollup pass wrote) aggregated in one SQL query over their span."""
    if not target.server_ids:
        return []
    starts = _bucket_starts(start, to, bucket)
    key = (target.kind, target.scope_id, tuple(target.server_ids), tuple(paths))
    known = cache.known_points(bucket, key)
    missing = [moment for moment in starts if moment not in known]
    if missing:
        generation = cache.generation
        first, last = missing[0], bucket_end(missing[-1], bucket)
        queried = await _query_points(target, bucket, first, last, paths)
        found: dict[datetime, PointFigures | None] = {
            moment: queried.get(moment) for moment in starts if first <= moment < last
        }
        renew = partial(_query_points, target, bucket, paths=paths)
        cache.store_points(bucket, key, generation, found, renew)
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
        per_row = RawSQL(f'{sums_number_sql(path)} / "sample_count"')
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


async def deployment_markers(
    target: ResolvedScope, start: datetime, to: datetime
) -> list[DeploymentMarker]:
    """Deployments of the scope created or finished in the window (time correlation only)."""
    in_window = Q(created_at__gte=start, created_at__lt=to) | Q(
        finished_at__gte=start, finished_at__lt=to
    )
    if target.kind == "all" and target.organization_id is not None:
        # A deployment only ever targets a server of its own organization (the planner checks
        # it), and its own indexed column spares a subquery over every server per request.
        scoped = Q(organization_id=target.organization_id)
    elif target.kind in ("all", "server"):
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
    return _SERIES.validate_python(raw)


class SeriesMemo:
    """The validated series of the last few answers, reused while the same figures are served.

    A week of hours is about a thousand point models per answer (10 ms of a busy loop), and
    between two rollup passes the read cache hands every repeat of a request the very same
    figure dicts. So an answer's series are found again by the identity of its figures. An
    entry holds those figures, so no identity it is keyed by can be reused while it is kept;
    and figures are never changed in place (a pass's renewal puts new dicts in the cache).
    """

    def __init__(self, limit: int = SERIES_MEMO_ENTRIES) -> None:
        self.limit = limit
        self._entries: OrderedDict[Hashable, tuple[PointList, list[RollupSeries]]] = OrderedDict()

    def series(self, points: PointList, signals: list[str], bucket: str) -> list[RollupSeries]:
        """The series of ``points`` (see ``_series_of``), validated once per figures."""
        key = (bucket, tuple(signals), tuple((s, n, id(v)) for s, n, v in points))
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found[1]
        series = _series_of(points, signals, bucket)
        self._entries[key] = (points, series)
        while len(self._entries) > self.limit:
            _ = self._entries.popitem(last=False)
        return series


SERIES_MEMO: Final = SeriesMemo()


def _totals(values: PointValues, signal: str) -> dict[str, dict[str, float]]:
    """A point's totals block of one signal (empty when the point has none of its figures)."""
    figures = {name: values[path] for name, path in _FIELD_PATHS[signal] if path in values}
    return {signal: figures} if figures else {}


async def rollup(
    target: ResolvedScope,
    query: RollupQuery,
    settings: Settings,
    cache: RollupReadCache,
    clock: SampleClock,
) -> RollupResponse:
    """Answer ``GET /runtime-monitoring/rollup`` (``cache`` and ``clock`` spare queries)."""
    now = datetime.now(UTC)
    signals = parse_signals(query.signals)
    start, to = parse_window(query, settings, bucket=query.bucket, now=now)
    paths = _paths(signals)
    # One part after the other, not gathered: on SQLite the short reads run on the loop's own
    # thread (``coordinator.db.inline_reads``), and gathering would cost two more turns of a
    # loop that is busy with ingest, for no overlap.
    if query.bucket == "minute":
        points = await minute_points(target, start, to, paths)
    else:
        points = await stored_points(target, query.bucket, start, to, paths, cache)
    newest, interval = await clock.newest(target.server_ids)
    retention = await retention_block(settings, clock)
    contributors = (
        await top_contributors(target, query.bucket, start, to, signals, cache)
        if query.include_top_contributors
        else []
    )
    markers = (
        await deployment_markers(target, start, to) if query.include_deployment_markers else []
    )
    # Minute points are summed from raw rows on every request: new figures each time, so
    # only points from the read cache are worth remembering.
    build = _series_of if query.bucket == "minute" else SERIES_MEMO.series
    series = build(points, signals, query.bucket)
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
