"""The rollup read cache: exact invalidation by rollup passes, no stale stores, API freshness."""

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from coordinator.db import inline_reads
from coordinator.monitoring.rollup_cache import (
    RENEW_IF_READ_WITHIN_SECONDS,
    RENEW_TURN_SECONDS,
    SLOW_RENEWAL_SECONDS,
    PointFigures,
    PointsQuery,
    RollupReadCache,
    SpanSums,
)
from coordinator.monitoring.rollups import roll_up_all
from tests.harness import Coordinator
from tests.unit.coordinator.test_monitoring_ingest import (
    connected_agent,
    container,
    make_resource,
    make_sample,
    service_of,
)
from tests.unit.coordinator.test_monitoring_rollups import (
    base_time,
    cpu_points,
    rollup_api,
    store,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_points_are_dropped_exactly_where_a_pass_wrote() -> None:
    cache = RollupReadCache()
    key = ("server", "srv", ("srv",), ("cpu.busyPercent",))
    found = {T0: (12, {"cpu.busyPercent": 5.0}), T0 + HOUR: None}
    cache.store_points("hour", key, cache.generation, found)
    cache.store_points("five-minute", key, cache.generation, {T0: (1, {})})
    assert cache.known_points("hour", key) == found

    cache.invalidate([("hour", T0 + HOUR), ("hour", T0 + 5 * HOUR)])
    assert cache.known_points("hour", key) == {T0: (12, {"cpu.busyPercent": 5.0})}
    assert cache.known_points("five-minute", key) == {T0: (1, {})}  # other bucket untouched


def test_a_read_that_raced_a_pass_does_not_store() -> None:
    cache = RollupReadCache()
    generation = cache.generation  # the read starts its query here...
    cache.invalidate([("hour", T0)])  # ...a pass commits and invalidates meanwhile
    cache.store_points("hour", "k", generation, {T0: (1, {})})
    cache.store_span("hour", "k", generation, (T0, T0 + HOUR), {("r", "s"): (1, (1.0,))})
    assert cache.known_points("hour", "k") == {}
    assert cache.span("hour", "k", T0, T0 + HOUR) is None


def test_spans_go_when_a_pass_writes_inside_them_and_on_clear() -> None:
    cache = RollupReadCache()
    sums: SpanSums = {("res", "srv"): (3, (1.0, None))}
    cache.store_span("hour", "k", cache.generation, (T0, T0 + 3 * HOUR), sums)
    assert cache.span("hour", "k", T0, T0 + 3 * HOUR) == sums
    assert cache.span("hour", "k", T0, T0 + 4 * HOUR) is None  # another span: not this one
    cache.invalidate([("hour", T0 + 3 * HOUR), ("five-minute", T0)])  # outside the span
    assert cache.span("hour", "k", T0, T0 + 3 * HOUR) == sums
    cache.invalidate([("hour", T0 + 2 * HOUR)])
    assert cache.span("hour", "k", T0, T0 + 3 * HOUR) is None

    cache.store_points("hour", "k", cache.generation, {T0: None})
    cache.clear()
    assert cache.known_points("hour", "k") == {}


def test_entries_are_bounded_least_recently_used_first() -> None:
    cache = RollupReadCache(limit=2)
    for name in ("a", "b"):
        cache.store_points("hour", name, cache.generation, {T0: None})
    _ = cache.known_points("hour", "a")  # "b" is now the least recently used
    cache.store_points("hour", "c", cache.generation, {T0: None})
    assert cache.known_points("hour", "b") == {}
    assert cache.known_points("hour", "a") == {T0: None}


async def test_a_pass_renews_entries_read_lately_and_drops_the_rest() -> None:
    cache = RollupReadCache()
    asked: list[tuple[str, datetime, datetime]] = []

    def points_of(name: str, value: float) -> PointsQuery:
        async def query(first: datetime, end: datetime) -> dict[datetime, PointFigures]:
            asked.append((name, first, end))
            return {T0 + HOUR: (2, {"cpu.busyPercent": value})}

        return query

    async def failing(first: datetime, end: datetime) -> dict[datetime, PointFigures]:
        raise RuntimeError("database gone")

    async def span_query(first: datetime, end: datetime) -> SpanSums:
        asked.append(("span", first, end))
        return {("res", "srv"): (9, (3.0,))}

    old: dict[datetime, PointFigures | None] = {
        T0: (1, {"cpu.busyPercent": 1.0}),
        T0 + HOUR: (1, {"cpu.busyPercent": 1.0}),
    }
    cache.store_points("hour", "hot", cache.generation, old, points_of("hot", 7.0))
    cache.store_points("hour", "broken", cache.generation, old, failing)
    cache.store_points("hour", "plain", cache.generation, old)  # no query: only dropped
    cache.store_span("hour", "live", cache.generation, (T0, T0 + 2 * HOUR), {}, span_query)

    await cache.renew([("hour", T0 + HOUR)])

    assert asked == [("hot", T0 + HOUR, T0 + 2 * HOUR), ("span", T0, T0 + 2 * HOUR)]
    assert cache.known_points("hour", "hot") == {
        T0: (1, {"cpu.busyPercent": 1.0}),  # not written by the pass: kept as it was
        T0 + HOUR: (2, {"cpu.busyPercent": 7.0}),  # recomputed
    }
    assert cache.known_points("hour", "broken") == {T0: (1, {"cpu.busyPercent": 1.0})}
    assert cache.known_points("hour", "plain") == {T0: (1, {"cpu.busyPercent": 1.0})}
    assert cache.span("hour", "live", T0, T0 + 2 * HOUR) == {("res", "srv"): (9, (3.0,))}

    # A read that started before the renewal does not store what it saw afterwards.
    generation = cache.generation
    await cache.renew([("hour", T0 + HOUR)])
    cache.store_points("hour", "hot", generation, {T0 + HOUR: None})
    assert cache.known_points("hour", "hot")[T0 + HOUR] == (2, {"cpu.busyPercent": 7.0})


async def test_entries_not_read_lately_are_dropped_not_renewed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = RollupReadCache()
    asked: list[datetime] = []

    async def query(first: datetime, end: datetime) -> dict[datetime, PointFigures]:
        asked.append(first)
        return {}

    cache.store_points("hour", "idle", cache.generation, {T0 + HOUR: None}, query)
    later = time.monotonic() + RENEW_IF_READ_WITHIN_SECONDS + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    await cache.renew([("hour", T0 + HOUR)])
    assert asked == []
    assert cache.known_points("hour", "idle") == {}


async def test_cached_rollup_reads_follow_late_samples(
    coordinator: Coordinator, admin_token: str
) -> None:
    """A late sample into an old bucket changes the next answer: points and contributors."""
    base = base_time()
    ids = await make_resource(coordinator, admin_token, "cached")
    agent = await connected_agent(coordinator, admin_token, "cache-1")
    lock = service_of(coordinator).rollup_lock
    await store(
        agent,
        [
            make_sample(base, busy=10.0, sequence=1, containers=[container(ids, 20.0)]),
            make_sample(base + HOUR, busy=30.0, sequence=2, containers=[container(ids, 40.0)]),
        ],
    )
    await roll_up_all(lock)
    window = {
        "scope.kind": "all",
        "bucket": "hour",
        "window.from": (base - HOUR).isoformat(),
        "signals": "cpu",
    }
    first = await rollup_api(coordinator, admin_token, **window)
    assert [(c, v) for _, c, v in cpu_points(first)] == [(1, 10.0), (1, 30.0)]
    (top,) = first["topContributors"]
    assert (top["sampleCount"], top["totals"]["cpu"]["containerCpuPercent"]) == (2, 30.0)
    again = await rollup_api(coordinator, admin_token, **window)
    assert cpu_points(again) == cpu_points(first)  # answered from the cache, same figures

    # Resent from a spool after an outage: lands in the first (settled) hour.
    late = base + timedelta(minutes=30)
    await store(
        agent, [make_sample(late, busy=50.0, sequence=3, containers=[container(ids, 80.0)])]
    )
    unchanged = await rollup_api(coordinator, admin_token, **window)
    assert cpu_points(unchanged) == cpu_points(first)  # not rolled up yet: rollups lag a pass
    await roll_up_all(lock)
    after = await rollup_api(coordinator, admin_token, **window)
    assert [(c, v) for _, c, v in cpu_points(after)] == [(2, 30.0), (1, 30.0)]
    (top,) = after["topContributors"]
    assert top["sampleCount"] == 3
    assert top["totals"]["cpu"]["containerCpuPercent"] == (20.0 + 40.0 + 80.0) / 3

    # The current hour: every pass rewrites it, and the next answer follows.
    now = datetime.now(UTC)
    await store(agent, [make_sample(now, busy=70.0, sequence=4, containers=[container(ids, 60.0)])])
    await roll_up_all(lock)
    current = await rollup_api(coordinator, admin_token, **window)
    assert cpu_points(current)[-1][1:] == (1, 70.0)
    (top,) = current["topContributors"]
    assert top["sampleCount"] == 4
    await agent.close()


async def test_a_slow_renewal_moves_to_the_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = RollupReadCache()
    in_background: list[bool] = []
    clock = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])

    async def slow(first: datetime, end: datetime) -> dict[datetime, PointFigures]:
        in_background.append(inline_reads._IN_BACKGROUND.get())
        clock[0] += 2 * SLOW_RENEWAL_SECONDS  # the query "takes" twice the limit
        return {}

    cache.store_points("hour", "fleet", cache.generation, {T0: None}, slow)
    await cache.renew([("hour", T0)])
    _ = cache.known_points("hour", "fleet")
    await cache.renew([("hour", T0)])
    assert in_background == [False, True]  # inline first; off the loop once known to be slow


async def test_inline_renewals_are_spread_over_turns_of_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass renewing many small entries leaves the loop between slices of them."""
    cache = RollupReadCache()
    clock = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    turns = [0]
    seen_in_turn: list[int] = []

    async def ticking() -> None:
        while True:
            turns[0] += 1
            await asyncio.sleep(0)  # counts event-loop turns: one per pass through the loop

    async def query(first: datetime, end: datetime) -> dict[datetime, PointFigures]:
        seen_in_turn.append(turns[0])
        clock[0] += 0.4 * RENEW_TURN_SECONDS  # fast: stays inline
        return {first: (1, {"cpu.busyPercent": 1.0})}

    for name in range(12):
        cache.store_points("hour", name, cache.generation, {T0: None}, query)
    ticker = asyncio.create_task(ticking())
    try:
        await cache.renew([("hour", T0)])
    finally:
        ticker.cancel()
    per_turn = Counter(seen_in_turn)
    # Every entry renewed, three per turn: the third is the one that crosses the slice.
    assert len(seen_in_turn) == 12
    assert sorted(per_turn.values()) == [3, 3, 3, 3]
    assert all(
        cache.known_points("hour", n)[T0] == (1, {"cpu.busyPercent": 1.0}) for n in range(12)
    )
