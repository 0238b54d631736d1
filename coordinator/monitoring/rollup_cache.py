"""Read cache of rollup figures per bucket, dropped exactly where a rollup pass writes.

Rollup rows change only in rollup passes (and retention deletes), and a pass knows which
(bucket, bucket start) pairs it wrote. So a 7-day hourly read computes its 168 points once and
afterwards only the bucket(s) the last pass touched (normally the current one), instead of
aggregating the whole window's rows on every request.

Consistency: a pass invalidates after its commit. A read notes the cache's ``generation``
before it queries and stores what it found only when no invalidation happened meanwhile, so
a read that saw the rows before a commit can never store them after that commit's
invalidation. One coordinator process writes rollups (see ``service.MonitoringService``), so
no other writer can change rows behind the cache.

Renewal: dropping the current bucket after every pass left its recomputation to the next
request, and over a large fleet that is the slow part (10,000 servers' rows). So a pass
``renew``s instead: entries read lately are recomputed by the pass itself (inline, or on the
database's worker thread once a renewal proved slow, see ``background_reads``), then dropped
and replaced in one step; reads keep answering from the previous figures meanwhile. Entries
nobody read lately are just dropped.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from datetime import datetime
from typing import Any, Final

from coordinator.db.inline_reads import background_reads
from coordinator.monitoring.metrics import bucket_end

logger = logging.getLogger(__name__)

MAX_ENTRIES: Final = 256
# An entry is renewed by passes while it was read within this many seconds.
RENEW_IF_READ_WITHIN_SECONDS: Final = 120.0
# A renewal that took longer than this runs on the database's worker thread from then on;
# shorter ones stay inline (``coordinator.db.inline_reads``): a hundred small reads each
# waiting for the GIL and a loop turn cost requests more than running them in place.
SLOW_RENEWAL_SECONDS: Final = 0.02
# Inline renewals run in slices of about this much loop time (see ``_recompute``).
RENEW_TURN_SECONDS: Final = 0.005

PointValues = dict[str, float]
# One point: sample count and figures (None: the bucket has no rows).
PointFigures = tuple[int, PointValues]
# Contributor sums over a span: (child scope id, server id) -> (sample count, sums per path).
SpanSums = dict[tuple[str, str], tuple[int, tuple[float | None, ...]]]
Key = tuple[str, Hashable]  # (bucket, what the read asked for)
# Recompute an entry's buckets [first, end): points per bucket start, or a span's sums.
PointsQuery = Callable[[datetime, datetime], Awaitable[dict[datetime, PointFigures]]]
SpanQuery = Callable[[datetime, datetime], Awaitable[SpanSums]]
_Query = PointsQuery | SpanQuery
# One recomputation: (("points" | "span", key), query, first bucket start, end).
_Job = tuple[tuple[str, Key], _Query, datetime, datetime]


class RollupReadCache:
    """Points per bucket start, and contributor sums per span of closed buckets.

    ``None`` points record buckets known to have no rows, so those are not queried again.
    """

    def __init__(self, limit: int = MAX_ENTRIES) -> None:
        self.limit = limit
        self.generation = 0
        self._points: OrderedDict[Key, dict[datetime, PointFigures | None]] = OrderedDict()
        self._spans: OrderedDict[Key, tuple[datetime, datetime, SpanSums]] = OrderedDict()
        # How to recompute an entry, and when it was last read (monotonic seconds).
        self._point_queries: dict[Key, tuple[PointsQuery, float]] = {}
        self._span_queries: dict[Key, tuple[SpanQuery, float]] = {}
        self._slow: set[tuple[str, Key]] = set()  # ("points" | "span", key) renewed off-loop

    # ---- points

    def known_points(self, bucket: str, key: Hashable) -> dict[datetime, PointFigures | None]:
        """The cached bucket starts of ``key`` (do not mutate)."""
        found = self._points.get((bucket, key))
        if found is None:
            return {}
        self._points.move_to_end((bucket, key))
        self._touch(self._point_queries, (bucket, key))
        return found

    def store_points(
        self,
        bucket: str,
        key: Hashable,
        generation: int,
        found: dict[datetime, PointFigures | None],
        query: PointsQuery | None = None,
    ) -> None:
        """Keep ``found`` unless a pass invalidated anything since ``generation`` was read;
        ``query`` recomputes buckets of this entry when a pass renews it."""
        if generation != self.generation:
            return
        entry = self._points.get((bucket, key))
        if entry is None:
            entry = self._points[(bucket, key)] = {}
            _trim(self._points, self.limit)
        else:
            self._points.move_to_end((bucket, key))
        entry.update(found)
        if query is not None:
            self._point_queries[(bucket, key)] = (query, time.monotonic())
            _forget_dropped(self._point_queries, self._points)

    # ---- spans

    def span(self, bucket: str, key: Hashable, start: datetime, end: datetime) -> SpanSums | None:
        """Cached sums of buckets ``[start, end)`` for ``key``, if still valid."""
        found = self._spans.get((bucket, key))
        if found is None or found[0] != start or found[1] != end:
            return None
        self._spans.move_to_end((bucket, key))
        self._touch(self._span_queries, (bucket, key))
        return found[2]

    def store_span(
        self,
        bucket: str,
        key: Hashable,
        generation: int,
        span: tuple[datetime, datetime],
        sums: SpanSums,
        query: SpanQuery | None = None,
    ) -> None:
        """Keep the sums of ``span`` (one span per key) unless a pass invalidated meanwhile;
        ``query`` recomputes the span when a pass renews it."""
        if generation != self.generation:
            return
        self._spans[(bucket, key)] = (span[0], span[1], sums)
        self._spans.move_to_end((bucket, key))
        _trim(self._spans, self.limit)
        if query is not None:
            self._span_queries[(bucket, key)] = (query, time.monotonic())
            _forget_dropped(self._span_queries, self._spans)

    # ---- renewal

    async def renew(self, touched: Iterable[tuple[str, datetime]]) -> None:
        """After a pass committed writes to ``touched`` (bucket, bucket start) pairs: recompute
        what lately read entries hold of them, then replace it in one step (the rest is
        dropped as by ``invalidate``). A failed recomputation only drops its entry."""
        by_bucket = _by_bucket(touched)
        if not by_bucket:
            return
        generation = self.generation
        recently = time.monotonic() - RENEW_IF_READ_WITHIN_SECONDS
        point_jobs: list[tuple[Key, list[datetime]]] = []
        span_jobs: list[tuple[Key, tuple[datetime, datetime]]] = []
        jobs: list[_Job] = []
        for key, entry in self._points.items():
            found = self._point_queries.get(key)
            if found is None or found[1] < recently or not entry:
                continue
            oldest = min(entry)
            starts = sorted(s for s in by_bucket.get(key[0], ()) if s >= oldest)
            if starts:
                end = bucket_end(starts[-1], key[0])
                point_jobs.append((key, starts))
                jobs.append((("points", key), found[0], starts[0], end))
        for key, (first, end, _) in self._spans.items():
            found_span = self._span_queries.get(key)
            if found_span is None or found_span[1] < recently:
                continue
            if any(first <= s < end for s in by_bucket.get(key[0], ())):
                span_jobs.append((key, (first, end)))
                jobs.append((("span", key), found_span[0], first, end))
        results = await self._recompute(jobs)
        point_results, span_results = results[: len(point_jobs)], results[len(point_jobs) :]
        cleared = generation != self.generation  # retention cleared meanwhile: keep nothing
        self._drop(by_bucket)
        if cleared:
            return
        for (key, starts), points in zip(point_jobs, point_results, strict=True):
            current = self._points.get(key)
            if isinstance(points, Exception):
                logger.warning("renewing cached rollup points failed: %r", points)
            elif current is not None:
                current.update({s: points.get(s) for s in starts})
        for (key, span), sums in zip(span_jobs, span_results, strict=True):
            if isinstance(sums, Exception):
                logger.warning("renewing cached contributor sums failed: %r", sums)
            else:
                self._spans[key] = (span[0], span[1], sums)

    async def _recompute(self, jobs: list["_Job"]) -> list[Any]:
        """The results of ``jobs`` in order (an exception in place of a failed one).

        Ones known to be slow run concurrently on the worker thread. The rest run inline one
        after another, yielding to the loop after every ``RENEW_TURN_SECONDS`` of them: started
        all at once they ran in one turn of the loop, and a hundred small reads (one per
        server a dashboard looked at) held every request for 200-450 ms at 10,000 agents.
        An inline one that took long runs on the worker thread from then on.
        """
        results: list[Any] = [None] * len(jobs)

        async def in_background(index: int, query: _Query, first: datetime, end: datetime) -> None:
            with background_reads():
                try:
                    results[index] = await query(first, end)
                except Exception as exc:  # reported by renew, per entry
                    results[index] = exc

        async with asyncio.TaskGroup() as background:
            turn = time.perf_counter()
            for index, (mark, query, first, end) in enumerate(jobs):
                if mark in self._slow:
                    _ = background.create_task(in_background(index, query, first, end))
                    continue
                if time.perf_counter() - turn > RENEW_TURN_SECONDS:
                    await asyncio.sleep(0)
                    turn = time.perf_counter()
                started = time.perf_counter()
                try:
                    results[index] = await query(first, end)
                except Exception as exc:
                    results[index] = exc
                if time.perf_counter() - started > SLOW_RENEWAL_SECONDS:
                    if len(self._slow) > 4 * self.limit:
                        self._slow.clear()
                    self._slow.add(mark)
        return results

    def _touch(self, queries: dict[Key, tuple[Any, float]], key: Key) -> None:
        found = queries.get(key)
        if found is not None:
            queries[key] = (found[0], time.monotonic())

    # ---- invalidation

    def invalidate(self, touched: Iterable[tuple[str, datetime]]) -> None:
        """Forget what a committed pass wrote: its (bucket, bucket start) pairs."""
        self._drop(_by_bucket(touched))

    def _drop(self, by_bucket: dict[str, set[datetime]]) -> None:
        if not by_bucket:
            return
        self.generation += 1
        for (bucket, _), entry in self._points.items():
            for start in by_bucket.get(bucket, ()):
                _ = entry.pop(start, None)
        stale = [
            key
            for key, (first, end, _) in self._spans.items()
            if any(first <= start < end for start in by_bucket.get(key[0], ()))
        ]
        for key in stale:
            del self._spans[key]

    def clear(self) -> None:
        """Forget everything (retention deleted rows)."""
        self.generation += 1
        self._points.clear()
        self._spans.clear()
        self._point_queries.clear()
        self._span_queries.clear()
        self._slow.clear()


def _by_bucket(touched: Iterable[tuple[str, datetime]]) -> dict[str, set[datetime]]:
    by_bucket: dict[str, set[datetime]] = {}
    for bucket, start in touched:
        by_bucket.setdefault(bucket, set()).add(start)
    return by_bucket


def _forget_dropped(queries: dict[Key, Any], entries: "OrderedDict[Key, Any]") -> None:
    """Drop the queries of trimmed entries (checked once they outnumber the entries twice)."""
    if len(queries) > 2 * max(len(entries), 1):
        for key in [k for k in queries if k not in entries]:
            del queries[key]


def _trim(entries: "OrderedDict[Key, Any]", limit: int) -> None:
    while len(entries) > limit:
        _ = entries.popitem(last=False)
