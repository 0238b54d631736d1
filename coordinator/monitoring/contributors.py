"""Top contributors of a rollup: the child scopes with most container CPU over the window."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final

from tortoise.expressions import Q, RawSQL
from tortoise.functions import Sum

from coordinator.db import models, read_connection
from coordinator.db.monitoring_models import SampleRollup, sums_number_sql
from coordinator.monitoring.metrics import bucket_end, floor_time
from coordinator.monitoring.reads import totals_block
from coordinator.monitoring.rollup_cache import PointValues, RollupReadCache, SpanSums
from coordinator.monitoring.schemas import Scope, TopContributor
from coordinator.monitoring.scopes import ResolvedScope, server_filter

TOP_CONTRIBUTORS: Final = 5
_TICK: Final = timedelta(microseconds=1)
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


async def top_contributors(
    target: ResolvedScope,
    bucket: str,
    start: datetime,
    to: datetime,
    signals: list[str],
    cache: RollupReadCache,
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
    # Two cached spans: the settled buckets (before the current one; only a late sample changes
    # them) and the rest (the current bucket, rewritten by every rollup pass). Each is dropped
    # when a pass writes inside it.
    settled = min(max(floor_time(datetime.now(UTC), stored_bucket), first), to)
    end = bucket_end(floor_time(to - _TICK, stored_bucket), stored_bucket) if to > settled else to
    key = (target.kind, target.scope_id, tuple(target.server_ids), parent_ids)
    spans = []
    for part, (span_start, span_end) in (("settled", (first, settled)), ("live", (settled, end))):
        found = cache.span(stored_bucket, (*key, part), span_start, span_end)
        if found is None:
            generation = cache.generation
            found = await _contributor_sums(parent, child, stored_bucket, span_start, span_end)
            cache.store_span(
                stored_bucket,
                (*key, part),
                generation,
                (span_start, span_end),
                found,
                partial(_contributor_sums, parent, child, stored_bucket),
            )
        spans.append(found)
    pairs: dict[tuple[str, str], tuple[int, list[float | None]]] = {}
    for sums in spans:
        for pair, (n, values) in sums.items():
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
        annotations[f"m{index}"] = Sum(RawSQL(sums_number_sql(path)))  # type: ignore[arg-type]
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
