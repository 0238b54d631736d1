"""Sample ingest: the ``samples`` listener, one batching writer, acks after commit, observers."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiohttp import web
from tortoise import connections
from tortoise.transactions import in_transaction

from coordinator.db.monitoring_models import RuntimeSample
from coordinator.db.raw_sql import bind_marks
from coordinator.hub.session import AgentSession
from coordinator.monitoring.attribution import AttributionCheck
from coordinator.monitoring.metrics import FoldedSample, fold_sample
from coordinator.monitoring.prepared import PreparedSample, container_ids, prepare
from coordinator.monitoring.retention import PruneOutcome
from coordinator.monitoring.rollups import RollupLock
from coordinator.monitoring.sample_clock import SampleClock
from shared.errors import PlatformError, Unavailable
from shared.messages import Hello
from shared.messages.monitoring import MonitoringAgentMessage, Sample, SampleBatch, SamplesAck
from shared.messages.typeset import unsolicited_types

logger = logging.getLogger(__name__)

Observer = Callable[[str, list[Sample]], Awaitable[None]]
# Whether an observer wants a server's samples, asked when they arrive (see ``prepared``).
ObserverWants = Callable[[str, list[Sample]], bool]

# One write per this many samples at most, and no sample waits longer than the linger for one.
MAX_WRITE_SAMPLES: Final = 1000
DEFAULT_LINGER_SECONDS: Final = 0.2
# Beyond this many queued samples, batches are refused (retriable) and stay in agents' spools.
DEFAULT_QUEUE_BOUND: Final = 20_000
_ACK_SEND_TIMEOUT: Final = 10.0
YIELD_EVERY_SAMPLES: Final = 50
_TABLE: Final = RuntimeSample._meta.db_table
_COLUMNS: Final = (
    "sample_id",
    "server_id",
    "sequence",
    "observed_at",
    "received_at",
    "interval_seconds",
    "totals",
    "mounts",
    "containers",
    "warnings",
)
# Rows per INSERT statement: 5,000 bind parameters, far under SQLite's and PostgreSQL's limits.
_ROWS_PER_INSERT: Final = 500
_PARAMS_PER_LOOKUP: Final = 5000
# Observers run beside the writer, never in its way; when they fall behind, each server keeps
# at most this many unobserved samples (the newest; thresholds care about the present).
MAX_UNOBSERVED_PER_SERVER: Final = 200


@dataclass
class _Pending:
    session: AgentSession
    frame_id: int
    samples: list[PreparedSample]
    organization_id: str | None
    queued_at: float = field(default_factory=time.monotonic)


class MonitoringService:
    """Consumes ``samples`` frames, stores them in batches, acknowledges after commit."""

    def __init__(
        self,
        *,
        linger_seconds: float = DEFAULT_LINGER_SECONDS,
        queue_bound: int = DEFAULT_QUEUE_BOUND,
    ) -> None:
        self.linger_seconds = linger_seconds
        self.queue_bound = queue_bound
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._queued_samples = 0
        self._observers: list[Observer] = []
        self._observer_wants: list[ObserverWants | None] = []
        self._attribution = AttributionCheck()
        # Serialises rollup passes (periodic job, prune, shutdown); see rollups.roll_up_all.
        self.rollup_lock = RollupLock()
        # (scope kind, scope id) -> servers whose stored samples had its containers; reads use it
        # to find a scope's servers before the rollup job has seen them.
        self.scope_servers: dict[tuple[str, str], set[str]] = {}
        self._unobserved: dict[str, list[Sample]] = {}
        self._observed_ready = asyncio.Event()
        self.unobserved_dropped = 0
        self._next_skip_log = 0.0
        # Newest sample per server and the raw span, for reads (see SampleClock).
        self.clock = SampleClock()
        self.stored_total = 0
        self.duplicate_total = 0
        self.refused_total = 0

    # ---- LinkListener

    @property
    def message_types(self) -> frozenset[str]:
        """Only sample batches; capacity replies carry ``re`` and resolve to their callers."""
        return unsolicited_types(MonitoringAgentMessage)

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """Nothing to do: samples carry everything needed."""

    async def on_message(self, session: AgentSession, message: Any) -> None:
        """Queue a batch for the writer; refuse it (retriable) when the writer is behind."""
        if not isinstance(message, SampleBatch):
            raise PlatformError(f"unexpected frame {type(message).__name__}")
        if self._queued_samples + len(message.samples) > self.queue_bound:
            self.refused_total += 1
            raise Unavailable(
                "the coordinator is behind on storing samples; keep them and retry later",
                details={"re": message.id, "queuedSamples": self._queued_samples},
            )
        organization_id = await self._attribution.organization_of(session.server_id)
        keep_wire = self._observed(session.server_id, message.samples)
        prepared = [prepare(sample, keep_wire=keep_wire) for sample in message.samples]
        self._queued_samples += len(prepared)
        self._queue.put_nowait(_Pending(session, message.id, prepared, organization_id))

    def _observed(self, server_id: str, samples: list[Sample]) -> bool:
        """Whether any observer wants these samples (an observer that did not say does)."""
        return any(wants is None or wants(server_id, samples) for wants in self._observer_wants)

    def on_disconnected(self, session: AgentSession) -> None:
        """Queued batches of a closed session are still stored; only their ack is skipped."""

    def after_prune(self, outcome: PruneOutcome) -> None:
        """A committed prune deleted rows: read caches forget what may have gone."""
        if outcome.pruned_rollups:
            self.rollup_lock.read_cache.clear()
        if outcome.pruned_samples:
            self.clock.pruned()

    # ---- observers

    def add_observer(self, callback: Observer, wants: ObserverWants | None = None) -> None:
        """Await ``callback(server_id, new_samples)`` after each commit (errors are logged).

        ``wants(server_id, samples)``, asked on arrival, lets the writer drop the wire models
        of samples no observer will look at; without it the observer gets every sample.
        """
        self._observers.append(callback)
        self._observer_wants.append(wants)

    @property
    def queued_samples(self) -> int:
        """Samples received but not yet committed."""
        return self._queued_samples

    # ---- writer

    async def run(self) -> None:
        """The single writer (batch, store, acknowledge) and the observer task, until canceled."""
        async with asyncio.TaskGroup() as tasks:
            _ = tasks.create_task(self._observe_forever())
            await self._write_forever()

    async def _write_forever(self) -> None:
        while True:
            batch = await self._next_batch()
            try:
                await self.write(batch)
            except Exception:
                # Nothing is acknowledged, so the agents resend from their spools.
                logger.exception("storing %d sample batches failed", len(batch))
            finally:
                self._queued_samples -= sum(len(p.samples) for p in batch)

    async def _next_batch(self) -> list[_Pending]:
        """Queued batches up to MAX_WRITE_SAMPLES, waiting at most until the first has been
        queued for the linger: under load the previous write already was the wait, so what
        queued meanwhile is written at once instead of lingering another 200 ms."""
        first = await self._queue.get()
        batch = [first]
        count = len(first.samples)
        deadline = first.queued_at + self.linger_seconds
        while count < MAX_WRITE_SAMPLES:
            if self._queue.empty():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        item = await self._queue.get()
                except TimeoutError:
                    break
            else:
                item = self._queue.get_nowait()
            batch.append(item)
            count += len(item.samples)
        return batch

    async def write(self, batch: list[_Pending]) -> None:
        """Store the new samples of ``batch`` in one transaction, then ack and notify."""
        all_samples = [s for p in batch for s in p.samples]
        await self._attribution.load_ids(*container_ids(all_samples))
        existing = await _known_sample_ids(list({s.sample_id for s in all_samples}))
        now = datetime.now(UTC)
        seen = existing  # grows with this batch: a sample repeated in it is stored once
        rows: list[list[Any]] = []
        folded: list[FoldedSample] = []
        results: list[tuple[_Pending, list[PreparedSample], int]] = []
        for pending in batch:
            new: list[PreparedSample] = []
            duplicates = 0
            for sample in pending.samples:
                if sample.sample_id in seen:
                    duplicates += 1
                    continue
                seen.add(sample.sample_id)
                new.append(sample)
                rows.append(self._row(pending, sample, now, folded))
                if len(rows) % YIELD_EVERY_SAMPLES == 0:
                    # In slices: a thousand samples are ~0.1 s of work, which acks and API
                    # answers should not wait for in one piece.
                    await asyncio.sleep(0)
            results.append((pending, new, duplicates))
        if rows:
            previous_max, new_max = await self.insert(rows)
            # Only after the commit: a rollup pass never takes deltas of uncommitted rows.
            self.rollup_lock.pending.extend(previous_max, new_max, folded)
            for pending, new, _ in results:
                for sample in new:
                    self.clock.observed(
                        pending.session.server_id, sample.observed_at, sample.interval_seconds
                    )
        stored = sum(len(new) for _, new, _ in results)
        self.stored_total += stored
        self.duplicate_total += sum(d for _, _, d in results)
        await self._acknowledge(results)
        await self._notify(results)

    def _row(
        self,
        pending: _Pending,
        sample: PreparedSample,
        now: datetime,
        folded: list[FoldedSample],
    ) -> list[Any]:
        """The table row of ``sample``; also appends what rollups need of it to ``folded``."""
        server_id = pending.session.server_id  # the authenticated link's, never the frame's
        containers = sample.containers
        for item in containers:
            item["attributionTrusted"] = self._attribution.trusted(pending.organization_id, item)
        figures = fold_sample(server_id, sample.observed_at, sample.totals, containers)
        folded.append(figures)
        for kind, scope_id, _ in figures[2][1:]:  # after the server's own: container scopes
            self.scope_servers.setdefault((kind, scope_id), set()).add(server_id)
        return [
            sample.sample_id,
            server_id,
            sample.sequence,
            sample.observed_at,
            now,
            sample.interval_seconds,
            orjson.dumps(sample.totals).decode(),
            sample.mounts_json,
            orjson.dumps(containers).decode(),
            orjson.dumps(sample.warnings).decode(),
        ]

    async def insert(self, rows: list[list[Any]]) -> tuple[int, int]:
        """Insert sample rows in one transaction; return the largest id before and after.

        Multi-row INSERT statements, not ``executemany``: the database runs in a thread, and
        each statement step it takes has to win the GIL back from the busy event loop (up to
        the 5 ms switch interval), so a thousand single-row steps cost seconds. One writer
        inserts, so the ids between the two returned are exactly these rows.
        """
        async with in_transaction() as connection:
            largest = f'SELECT MAX("id") AS "largest" FROM "{_TABLE}"'  # noqa: S608
            _, before = await connection.execute_query(largest)
            for first in range(0, len(rows), _ROWS_PER_INSERT):
                part = rows[first : first + _ROWS_PER_INSERT]
                sql = _insert_sql(connection.capabilities.dialect, len(part))
                await connection.execute_query(sql, [value for row in part for value in row])
            _, after = await connection.execute_query(largest)
            return int(before[0]["largest"] or 0), int(after[0]["largest"] or 0)

    async def _acknowledge(self, results: list[tuple[_Pending, list[PreparedSample], int]]) -> None:
        async def ack(pending: _Pending, stored: int, duplicates: int) -> None:
            session = pending.session
            if session.ws.closed:
                return  # the agent resends on its next link; the duplicate is then counted
            with contextlib.suppress(PlatformError, TimeoutError):
                async with asyncio.timeout(_ACK_SEND_TIMEOUT):
                    await session.send(
                        SamplesAck(
                            id=session.next_id(),
                            re=pending.frame_id,
                            stored=stored,
                            duplicates=duplicates,
                        )
                    )

        # Concurrent, so one stalled agent delays no other ack; started in slices, so a
        # thousand sends do not all run in one turn of the event loop.
        async with asyncio.TaskGroup() as sends:
            for index, (pending, new, duplicates) in enumerate(results, 1):
                _ = sends.create_task(ack(pending, len(new), duplicates))
                if index % YIELD_EVERY_SAMPLES == 0:
                    await asyncio.sleep(0)

    async def _notify(self, results: list[tuple[_Pending, list[PreparedSample], int]]) -> None:
        """Hand committed samples to the observer task (never waits for observers)."""
        if not self._observers:
            return
        for pending, new, _ in results:
            wanted = [sample.wire for sample in new if sample.wire is not None]
            if not wanted:
                continue
            backlog = self._unobserved.setdefault(pending.session.server_id, [])
            backlog.extend(wanted)
            if len(backlog) > MAX_UNOBSERVED_PER_SERVER:
                dropped = len(backlog) - MAX_UNOBSERVED_PER_SERVER
                self.unobserved_dropped += dropped
                del backlog[:dropped]
                if time.monotonic() >= self._next_skip_log:  # once a minute, not per batch
                    self._next_skip_log = time.monotonic() + 60.0
                    logger.warning(
                        "observers are behind; %d samples skipped so far",
                        self.unobserved_dropped,
                    )
        self._observed_ready.set()

    async def _observe_forever(self) -> None:
        while True:
            _ = await self._observed_ready.wait()
            await self.observe_pending()

    async def observe_pending(self) -> None:
        """Call every observer with each server's committed, not yet observed samples."""
        self._observed_ready.clear()
        work, self._unobserved = self._unobserved, {}
        for server_id, samples in work.items():
            for observer in self._observers:
                try:
                    await observer(server_id, samples)
                except Exception:
                    logger.exception("[%s] a monitoring observer failed", server_id)


async def _known_sample_ids(sample_ids: list[str]) -> set[str]:
    """Which of ``sample_ids`` are stored already (raw SQL: the ORM's query building cost
    more per id than the lookup)."""
    connection = connections.get("default")
    found: set[str] = set()
    for first in range(0, len(sample_ids), _PARAMS_PER_LOOKUP):
        part = sample_ids[first : first + _PARAMS_PER_LOOKUP]
        marks = ", ".join(bind_marks(connection.capabilities.dialect, len(part)))
        sql = f'SELECT "sample_id" FROM "{_TABLE}" WHERE "sample_id" IN ({marks})'  # noqa: S608
        _, rows = await connection.execute_query(sql, part)
        found.update(str(row["sample_id"]) for row in rows)
    return found


def _insert_sql(dialect: str, count: int) -> str:
    """A ``count``-row INSERT of sample rows (only the table, columns and placeholders)."""
    width = len(_COLUMNS)
    marks = bind_marks(dialect, count * width)
    groups = ["(" + ", ".join(marks[row * width : (row + 1) * width]) + ")" for row in range(count)]
    columns = ", ".join(f'"{c}"' for c in _COLUMNS)
    return f'INSERT INTO "{_TABLE}" ({columns}) VALUES {", ".join(groups)}'  # noqa: S608


MONITORING_KEY: Final = web.AppKey("monitoring_service", MonitoringService)


async def run_writer(service: MonitoringService) -> AsyncIterator[None]:
    """Run the writer for the duration of the block.

    Batches still queued at shutdown are dropped unacknowledged: their agents still hold them
    in their spools and resend them to the next coordinator, so shutdown need not wait.
    """
    async with asyncio.TaskGroup() as tasks:
        writer = tasks.create_task(service.run())
        try:
            yield
        finally:
            writer.cancel()
