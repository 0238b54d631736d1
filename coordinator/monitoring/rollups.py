"""The rollup job: raw samples past the watermark -> five-minute and hour rows, exactly once."""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from coordinator.db.monitoring_models import MonitoringWatermark, RuntimeSample, SampleRollup
from coordinator.monitoring.metrics import STORED_BUCKETS, Accumulator, RollupKey, accumulate

logger = logging.getLogger(__name__)

ROLLUP_WATERMARK: Final = "rollups"
ROLLUP_INTERVAL_SECONDS: Final = 15.0
# Raw rows read per transaction; a backlog (after downtime) is worked off in several passes.
# Accumulating runs on the event loop, so a chunk is kept to ~0.1 s of work (acks and API
# answers wait meanwhile).
CHUNK_ROWS: Final = 1000
FINAL_PASS_SECONDS: Final = 5.0
_PARAMS_PER_QUERY: Final = 5000
_ROWS_PER_STATEMENT: Final = 500


async def watermark(name: str = ROLLUP_WATERMARK) -> int:
    """The last raw sample id the rollup job has folded in (0 before the first run)."""
    row = await MonitoringWatermark.get_or_none(name=name)
    return int(row.position) if row else 0


async def roll_up_once(chunk_rows: int = CHUNK_ROWS) -> int:
    """Fold up to ``chunk_rows`` raw samples past the watermark into rollups; return how many.

    Rows and the watermark move in one transaction, so a crash either keeps both or neither:
    no sample is counted twice or skipped. Sample ids grow in commit order because one writer
    inserts them (see ``service.MonitoringService``).
    """
    async with in_transaction() as connection:
        mark = await MonitoringWatermark.select_for_update().get_or_none(name=ROLLUP_WATERMARK)
        position = int(mark.position) if mark else 0
        rows = await _raw_rows(connection, position, chunk_rows)
        if not rows:
            return 0
        await upsert(accumulate(rows, STORED_BUCKETS))
        new_position = max(int(r["id"]) for r in rows)
        now = datetime.now(UTC)
        if mark is None:
            _ = await MonitoringWatermark.create(
                name=ROLLUP_WATERMARK, position=new_position, updated_at=now
            )
        else:
            await MonitoringWatermark.filter(name=ROLLUP_WATERMARK).update(
                position=new_position, updated_at=now
            )
        return len(rows)


async def _raw_rows(
    connection: BaseDBAsyncClient, position: int, limit: int
) -> list[dict[str, Any]]:
    """Raw rows past ``position``, decoded by hand: the ORM's per-row conversion cost more than
    the accumulation itself."""
    mark = "?" if connection.capabilities.dialect == "sqlite" else "$1"
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
    """Run passes until nothing is left past the watermark; return the samples folded.

    ``lock`` keeps the periodic job and on-demand passes (prune, shutdown) from reading the
    same rows past the watermark at once.
    """
    total = 0
    async with lock:
        while True:
            done = await roll_up_once(chunk_rows)
            total += done
            if done < chunk_rows:
                return total
            await asyncio.sleep(0)  # let frames and requests through between chunks


async def upsert(accumulated: dict[RollupKey, Accumulator]) -> None:
    """Merge accumulators into existing rollup rows or create them (in the caller's transaction)."""
    if not accumulated:
        return
    buckets = list({key[0] for key in accumulated})
    starts = list({key[1] for key in accumulated})
    kinds = list({key[2] for key in accumulated})
    scope_ids = list({key[3] for key in accumulated})
    existing: dict[RollupKey, SampleRollup] = {}
    # Two selective IN lists: one query per slice of scopes, not one per row. Slices and batch
    # sizes keep every statement under PostgreSQL's 32,767 bind parameters.
    for first in range(0, len(scope_ids), _PARAMS_PER_QUERY):
        part = scope_ids[first : first + _PARAMS_PER_QUERY]
        # bucket and scope_kind lead the unique index, so this is an index lookup, not a scan.
        for row in await SampleRollup.filter(
            bucket__in=buckets, scope_kind__in=kinds, scope_id__in=part, bucket_start__in=starts
        ):
            key = (row.bucket, row.bucket_start, row.scope_kind, row.scope_id, row.server_id)
            existing[key] = row
    created: list[SampleRollup] = []
    changed: list[SampleRollup] = []
    for key, acc in accumulated.items():
        found = existing.get(_normalise(key))
        if found is None:
            bucket, start, kind, scope_id, server_id = key
            created.append(
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
        merged = Accumulator(found.sample_count, dict(found.sums), dict(found.maxima))
        merged.merge(acc)
        found.sample_count = merged.sample_count
        found.sums = merged.sums
        found.maxima = merged.maxima
        changed.append(found)
    if created:
        await SampleRollup.bulk_create(created, batch_size=_ROWS_PER_STATEMENT)
    if changed:
        await SampleRollup.bulk_update(
            changed, fields=["sample_count", "sums", "maxima"], batch_size=_ROWS_PER_STATEMENT
        )


def _normalise(key: RollupKey) -> RollupKey:
    bucket, start, kind, scope_id, server_id = key
    return (bucket, start.astimezone(UTC), kind, scope_id, server_id)


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
