"""The rollup job: raw samples past the watermark -> five-minute and hour rows, exactly once."""

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from coordinator.db import read_connection
from coordinator.db.inline_reads import background_reads
from coordinator.db.monitoring_models import MonitoringWatermark, RuntimeSample, SampleRollup
from coordinator.db.raw_sql import bind_marks
from coordinator.monitoring.metrics import (
    STORED_BUCKETS,
    Accumulator,
    RollupKey,
    accumulate,
)
from coordinator.monitoring.pending_rollups import PendingRollups, StoredRow
from coordinator.monitoring.rollup_cache import RollupReadCache

logger = logging.getLogger(__name__)

ROLLUP_WATERMARK: Final = "rollups"
ROLLUP_INTERVAL_SECONDS: Final = 15.0
# Raw rows read per transaction; a backlog (after downtime) is worked off in several passes.
# Accumulating runs on the event loop, so a chunk is kept to ~0.1 s of work (acks and API
# answers wait meanwhile).
CHUNK_ROWS: Final = 1000
FINAL_PASS_SECONDS: Final = 5.0
# Scope ids bound per lookup of existing rollup rows (PostgreSQL allows 32,767 parameters).
_SCOPES_PER_LOOKUP: Final = 1000
_ROWS_PER_STATEMENT: Final = 500
# Keys merged between yields to the event loop (a few milliseconds of work each).
YIELD_EVERY_KEYS: Final = 250


async def watermark(name: str = ROLLUP_WATERMARK) -> int:
    """The last raw sample id the rollup job has folded in (0 before the first run)."""
    row = await MonitoringWatermark.get_or_none(name=name)
    return int(row.position) if row else 0


class RollupLock(asyncio.Lock):
    """Serialises rollup passes (periodic job, prune, shutdown); holds the writer's in-memory
    deltas, which only a pass holding this lock flushes, and the read cache those passes
    invalidate."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = PendingRollups()
        self.read_cache = RollupReadCache()


Touched = set[tuple[str, datetime]]  # (bucket, bucket start) pairs a pass wrote


async def roll_up_once(chunk_rows: int = CHUNK_ROWS) -> int:
    """Fold up to ``chunk_rows`` raw samples past the watermark into rollups; return how many."""
    done, _, _ = await _fold_from_database(chunk_rows)
    return done


async def _fold_from_database(chunk_rows: int) -> tuple[int, int, Touched]:
    """Fold up to ``chunk_rows`` raw rows past the watermark; (rows folded, new watermark,
    buckets written).

    Rows and the watermark move in one transaction, so a crash either keeps both or neither:
    no sample is counted twice or skipped. Sample ids grow in commit order because one writer
    inserts them (see ``service.MonitoringService``).
    """
    async with in_transaction() as connection:
        mark = (
            await MonitoringWatermark.select_for_update()
            .using_db(connection)
            .get_or_none(name=ROLLUP_WATERMARK)
        )
        position = int(mark.position) if mark else 0
        rows = await _raw_rows(connection, position, chunk_rows)
        if not rows:
            return 0, position, set()
        accumulated = accumulate(rows, STORED_BUCKETS)
        await upsert(accumulated, connection)
        new_position = max(int(r["id"]) for r in rows)
        await _move_watermark(connection, mark is not None, new_position)
        return len(rows), new_position, touched_by(accumulated)


def touched_by(accumulated: dict[RollupKey, Accumulator]) -> Touched:
    """The (bucket, bucket start) pairs whose rollup rows ``accumulated`` changes."""
    return {(key[0], key[1]) for key in accumulated}


async def _flush_pending(pending: PendingRollups) -> tuple[int, Touched] | None:
    """Merge the writer's deltas and move the watermark in one transaction; (samples folded,
    buckets written), or None when the deltas do not continue the stored watermark (then
    nothing is written).

    The merge is planned before the transaction: the sample writer shares the write
    connection and waits while a transaction holds it, and reading and merging 10,000
    servers' rows took most of a 3 s pass. Rows the last flush wrote are merged from memory
    (``PendingRollups.written``); the rest are read on the read connection. Only passes
    (holding the rollup lock) write rollup rows, so both are still what the updates replace;
    if retention deleted a row meanwhile, ``apply_upsert`` notices and the flush rolls back.
    """
    base, last_id, deltas, samples = pending.take()
    if last_id == base:
        return 0, set()
    try:
        plan = await plan_upsert(deltas, read_connection(), pending.written)
        async with in_transaction() as connection:
            mark = (
                await MonitoringWatermark.select_for_update()
                .using_db(connection)
                .get_or_none(name=ROLLUP_WATERMARK)
            )
            if (int(mark.position) if mark else 0) != base:
                pending.stop()
                return None
            await apply_upsert(plan, connection)
            await _move_watermark(connection, mark is not None, last_id)
    except BaseException:
        pending.stop()  # rolled back: the database pass folds these rows instead
        raise
    pending.written = plan.written  # committed: what those rows now hold
    return samples, touched_by(deltas)


async def _move_watermark(connection: BaseDBAsyncClient, exists: bool, position: int) -> None:
    now = datetime.now(UTC)
    if exists:
        await (
            MonitoringWatermark.filter(name=ROLLUP_WATERMARK)
            .using_db(connection)
            .update(position=position, updated_at=now)
        )
    else:
        _ = await MonitoringWatermark.create(
            name=ROLLUP_WATERMARK, position=position, updated_at=now, using_db=connection
        )


async def _raw_rows(
    connection: BaseDBAsyncClient, position: int, limit: int
) -> list[dict[str, Any]]:
    """Raw rows past ``position``, decoded by hand: the ORM's per-row conversion cost more than
    the accumulation itself."""
    (mark,) = bind_marks(connection.capabilities.dialect, 1)
    # Nothing here comes from input: the table name, a placeholder and an int.
    sql = (
        'SELECT "id", "server_id", "observed_at", "totals", "containers" '  # noqa: S608
        f'FROM "{RuntimeSample._meta.db_table}" WHERE "id" > {mark} '
        f'ORDER BY "id" LIMIT {int(limit)}'
    )
    _, fetched = await connection.execute_query(sql, [position])
    rows = []
    for row in fetched:
        observed = row["observed_at"]
        if isinstance(observed, str):
            observed = datetime.fromisoformat(observed)
        rows.append(
            {
                "id": int(row["id"]),
                "server_id": str(row["server_id"]),
                "observed_at": observed.astimezone(UTC),
                "totals": _json(row["totals"]),
                "containers": _json(row["containers"]),
            }
        )
    return rows


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


async def roll_up_all(lock: asyncio.Lock, chunk_rows: int = CHUNK_ROWS) -> int:
    """Fold everything past the watermark into rollups; return the samples folded.

    ``lock`` keeps the periodic job and on-demand passes (prune, shutdown) from folding the
    same rows at once. When it is the service's ``RollupLock`` and the writer's deltas continue
    the watermark, only those deltas are merged: the rows past the watermark are exactly the
    ones they cover, so reading them back would count them twice.
    """
    pending = lock.pending if isinstance(lock, RollupLock) else None
    cache = lock.read_cache if isinstance(lock, RollupLock) else None
    total = 0
    async with lock:
        if pending is not None and pending.tracking:
            flushed = await _flush_pending(pending)
            if flushed is not None:
                samples, touched = flushed
                if cache is not None:  # after the commit: see RollupReadCache
                    await cache.renew(touched)
                return samples
        while True:
            done, position, touched = await _fold_from_database(chunk_rows)
            if cache is not None:
                cache.invalidate(touched)
            total += done
            if done < chunk_rows:
                break
            await asyncio.sleep(0)  # let frames and requests through between chunks
        if pending is not None:
            # Every row committed so far is folded (the writer checks that its next insert
            # directly follows this position before adding deltas again).
            pending.resume_at(position)
        return total


class RollupsChanged(Exception):
    """A planned update found its rollup row gone (retention deleted it after the plan)."""


@dataclass
class UpsertPlan:
    """Rollup rows to create, and merged figures of existing ones: [id, count, sums, maxima]
    (JSON text), ready to write."""

    created: list[SampleRollup] = field(default_factory=list)
    changed: list[list[Any]] = field(default_factory=list)
    # The changed rows as they will be stored, for the next flush (see PendingRollups.written).
    written: dict[RollupKey, StoredRow] = field(default_factory=dict)


async def upsert(
    accumulated: dict[RollupKey, Accumulator], connection: BaseDBAsyncClient | None = None
) -> None:
    """Merge accumulators into existing rollup rows or create them (in ``connection``'s
    transaction)."""
    db = connection or connections.get("default")
    await apply_upsert(await plan_upsert(accumulated, db), db)


async def plan_upsert(
    accumulated: dict[RollupKey, Accumulator],
    db: BaseDBAsyncClient,
    known: Mapping[RollupKey, StoredRow] | None = None,
) -> UpsertPlan:
    """Merge ``accumulated`` into the existing rows of its keys; ``known`` holds rows as
    stored (the last flush's), the others are read from ``db``.

    Existing rows are later updated by id with one prepared statement: ORM objects and
    ``bulk_update``'s CASE statements cost more than the database.
    """
    plan = UpsertPlan()
    if not accumulated:
        return plan
    known = known or {}
    existing = await _existing_rows([key for key in accumulated if key not in known], db)
    for index, (key, acc) in enumerate(accumulated.items(), 1):
        if index % YIELD_EVERY_KEYS == 0:
            await asyncio.sleep(0)
        stored = known.get(key) or existing.get(key)
        if stored is None:
            bucket, start, kind, scope_id, server_id = key
            plan.created.append(
                SampleRollup(
                    bucket=bucket,
                    bucket_start=start,
                    scope_kind=kind,
                    scope_id=scope_id,
                    server_id=server_id,
                    sample_count=acc.sample_count,
                    sums=acc.sums,
                    maxima=acc.maxima,
                )
            )
            continue
        row_id, figures = stored
        # A copy: ``known`` stays as stored until this plan is committed.
        merged = Accumulator(figures.sample_count, dict(figures.sums), dict(figures.maxima))
        merged.merge(acc)
        plan.changed.append(
            [
                row_id,
                merged.sample_count,
                orjson.dumps(merged.sums).decode(),
                orjson.dumps(merged.maxima).decode(),
            ]
        )
        plan.written[key] = (row_id, merged)
    return plan


async def _existing_rows(
    keys: list[RollupKey], db: BaseDBAsyncClient
) -> dict[RollupKey, StoredRow]:
    """The stored rows of ``keys``: key -> (row id, figures).

    One query per (bucket, bucket start) and slice of scopes, so no row's bucket start needs
    converting back, and raw rows decoded with orjson: the ORM's per-row conversion of 20,000
    rows (two JSON documents and a date each) held the event loop for seconds per pass. On
    SQLite the queries run on the read connection's worker thread (nobody waits for a pass).
    """
    groups: dict[tuple[str, datetime], tuple[set[str], set[str]]] = {}
    for bucket, start, kind, scope_id, _ in keys:
        kinds, scopes = groups.setdefault((bucket, start), (set(), set()))
        kinds.add(kind)
        scopes.add(scope_id)
    existing: dict[RollupKey, StoredRow] = {}
    dialect = db.capabilities.dialect
    for (bucket, start), (kinds, scopes) in groups.items():
        scope_ids = sorted(scopes)
        for first in range(0, len(scope_ids), _SCOPES_PER_LOOKUP):
            part = scope_ids[first : first + _SCOPES_PER_LOOKUP]
            sql = _existing_sql(dialect, len(kinds), len(part))
            with background_reads():
                _, rows = await db.execute_query(sql, [bucket, start, *sorted(kinds), *part])
            for index, row in enumerate(rows, 1):
                if index % YIELD_EVERY_KEYS == 0:
                    await asyncio.sleep(0)
                key = (bucket, start, str(row[1]), str(row[2]), str(row[3]))
                figures = Accumulator(int(row[4]), _json(row[5]), _json(row[6]))
                existing[key] = (int(row[0]), figures)
    return existing


def _existing_sql(dialect: str, kinds: int, scopes: int) -> str:
    """Rollup rows of one bucket and bucket start, for ``kinds`` scope kinds and ``scopes``
    scope ids (only the table, columns and placeholders)."""
    marks = bind_marks(dialect, 2 + kinds + scopes)
    kind_marks = ", ".join(marks[2 : 2 + kinds])
    scope_marks = ", ".join(marks[2 + kinds :])
    # bucket, scope_kind and scope_id lead the unique index: an index lookup, not a scan.
    return (
        'SELECT "id", "scope_kind", "scope_id", "server_id", "sample_count", "sums", "maxima" '  # noqa: S608
        f'FROM "{SampleRollup._meta.db_table}" WHERE "bucket" = {marks[0]} '
        f'AND "bucket_start" = {marks[1]} AND "scope_kind" IN ({kind_marks}) '
        f'AND "scope_id" IN ({scope_marks})'
    )


async def apply_upsert(plan: UpsertPlan, connection: BaseDBAsyncClient) -> None:
    """Write ``plan`` in ``connection``'s transaction; raise ``RollupsChanged`` (so it rolls
    back) when a row to update is gone."""
    if plan.created:
        await SampleRollup.bulk_create(
            plan.created, batch_size=_ROWS_PER_STATEMENT, using_db=connection
        )
    for first in range(0, len(plan.changed), _ROWS_PER_STATEMENT):
        updates = plan.changed[first : first + _ROWS_PER_STATEMENT]
        sql = _update_sql(connection.capabilities.dialect, len(updates))
        matched, _ = await connection.execute_query(sql, [v for row in updates for v in row])
        if matched != len(updates):
            raise RollupsChanged(f"{len(updates) - matched} rollup rows went away meanwhile")


def _update_sql(dialect: str, count: int) -> str:
    """One UPDATE of ``count`` rollup rows by id from a VALUES list of (id, count, sums, maxima).

    One statement, not ``executemany``: the database runs in a thread and each step it takes
    waits for the GIL (up to the 5 ms switch interval) while the event loop is busy.
    """
    table = SampleRollup._meta.db_table
    if dialect == "sqlite":  # VALUES columns are column1..column4; UPDATE FROM needs 3.33+
        values = ", ".join(["(?, ?, ?, ?)"] * count)
        return (
            f'UPDATE "{table}" SET "sample_count" = v.column2, "sums" = v.column3, '  # noqa: S608
            f'"maxima" = v.column4 FROM (VALUES {values}) AS v WHERE "{table}"."id" = v.column1'
        )
    values = ", ".join(
        f"(${4 * i + 1}::bigint, ${4 * i + 2}::integer, ${4 * i + 3}::jsonb, ${4 * i + 4}::jsonb)"
        for i in range(count)
    )
    return (
        f'UPDATE "{table}" SET "sample_count" = v.n, "sums" = v.s, "maxima" = v.m '  # noqa: S608
        f'FROM (VALUES {values}) AS v(id, n, s, m) WHERE "{table}"."id" = v.id'
    )


async def run_rollups(lock: asyncio.Lock, interval: float = ROLLUP_INTERVAL_SECONDS) -> None:
    """Roll up every ``interval`` seconds until canceled (errors are logged and retried)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await roll_up_all(lock)
        except Exception:
            logger.exception("rolling up samples failed")


async def rollup_job(
    lock: asyncio.Lock, interval: float = ROLLUP_INTERVAL_SECONDS
) -> AsyncIterator[None]:
    """Run the rollup loop for the duration of the block, and one last pass at shutdown."""
    async with asyncio.TaskGroup() as tasks:
        loop = tasks.create_task(run_rollups(lock, interval))
        try:
            yield
        finally:
            loop.cancel()
    try:
        # Bounded: an interrupted pass rolls back whole, and the next start carries on.
        async with asyncio.timeout(FINAL_PASS_SECONDS):
            await roll_up_all(lock)
    except TimeoutError:
        logger.warning("the final rollup pass was cut short; the next start finishes it")
    except Exception:
        logger.exception("the final rollup pass failed")
