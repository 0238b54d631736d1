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
"""

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import Any, Final

MAX_ENTRIES: Final = 256

PointValues = dict[str, float]
# One point: sample count and figures (None: the bucket has no rows).
PointFigures = tuple[int, PointValues]
# Contributor sums over a span: (child scope id, server id) -> (sample count, sums per path).
SpanSums = dict[tuple[str, str], tuple[int, tuple[float | None, ...]]]
Key = tuple[str, Hashable]  # (bucket, what the read asked for)


class RollupReadCache:
    """Points per bucket start, and contributor sums per span of closed buckets.

    ``None`` points record buckets known to have no rows, so those are not queried again.
    """

    def __init__(self, limit: int = MAX_ENTRIES) -> None:
        self.limit = limit
        self.generation = 0
        self._points: OrderedDict[Key, dict[datetime, PointFigures | None]] = OrderedDict()
        self._spans: OrderedDict[Key, tuple[datetime, datetime, SpanSums]] = OrderedDict()

    # ---- points

    def known_points(self, bucket: str, key: Hashable) -> dict[datetime, PointFigures | None]:
        """The cached bucket starts of ``key`` (do not mutate)."""
        found = self._points.get((bucket, key))
        if found is None:
            return {}
        self._points.move_to_end((bucket, key))
        return found

    def store_points(
        self,
        bucket: str,
        key: Hashable,
        generation: int,
        found: dict[datetime, PointFigures | None],
    ) -> None:
        """Keep ``found`` unless a pass invalidated anything since ``generation`` was read."""
        if generation != self.generation:
            return
        entry = self._points.get((bucket, key))
        if entry is None:
            entry = self._points[(bucket, key)] = {}
            _trim(self._points, self.limit)
        else:
            self._points.move_to_end((bucket, key))
        entry.update(found)

    # ---- spans

    def span(self, bucket: str, key: Hashable, start: datetime, end: datetime) -> SpanSums | None:
        """Cached sums of buckets ``[start, end)`` for ``key``, if still valid."""
        found = self._spans.get((bucket, key))
        if found is None or found[0] != start or found[1] != end:
            return None
        self._spans.move_to_end((bucket, key))
        return found[2]

    def store_span(
        self,
        bucket: str,
        key: Hashable,
        generation: int,
        span: tuple[datetime, datetime],
        sums: SpanSums,
    ) -> None:
        """Keep the sums of ``span`` (one span per key) unless a pass invalidated meanwhile."""
        if generation != self.generation:
            return
        self._spans[(bucket, key)] = (span[0], span[1], sums)
        self._spans.move_to_end((bucket, key))
        _trim(self._spans, self.limit)

    # ---- invalidation

    def invalidate(self, touched: Iterable[tuple[str, datetime]]) -> None:
        """Forget what a committed pass wrote: its (bucket, bucket start) pairs."""
        by_bucket: dict[str, set[datetime]] = {}
        for bucket, start in touched:
            by_bucket.setdefault(bucket, set()).add(start)
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


def _trim(entries: "OrderedDict[Key, Any]", limit: int) -> None:
    while len(entries) > limit:
        _ = entries.popitem(last=False)
