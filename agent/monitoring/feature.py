"""The monitoring feature: sampling loop, spool delivery per link, capacity requests as tasks."""

import asyncio
import logging
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.features import LinkContext
from agent.monitoring.capacity import Inspector
from agent.monitoring.delivery import Delivery
from agent.monitoring.engine import Engine
from agent.monitoring.prune import Pruner
from agent.monitoring.sampler import DockerDiskCache, Sampler
from agent.monitoring.spool import Spool
from shared.errors import PlatformError, Unavailable
from shared.messages import UNSTAMPED
from shared.messages.monitoring import (
    MONITORING_CAPABILITY,
    MONITORING_COORDINATOR_TYPES,
    CapacityInspect,
    CapacityPrune,
    Sample,
    SamplesAck,
    new_sample_id,
)

logger = logging.getLogger(__name__)

# A first reading primes the counters (CPU, network, block I/O are deltas); the first stored
# sample follows after this long, not a whole interval later.
PRIME_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 3600.0


class MonitoringFeature:
    """Samples on a monotonic grid, spools, delivers; answers capacity inspect and prune."""

    def __init__(
        self,
        engine: Engine,
        state_dir: Path,
        spool: Spool,
        interval_seconds: float,
        *,
        sampler: Sampler | None = None,
        docker_disk: DockerDiskCache | None = None,
        delivery: Delivery | None = None,
    ) -> None:
        self._interval = interval_seconds
        self._spool = spool
        self._docker_disk = docker_disk or DockerDiskCache(engine)
        self._sampler = sampler or Sampler(engine, self._docker_disk)
        self.delivery = delivery or Delivery(spool)
        self._inspector = Inspector(engine, state_dir, self._docker_disk)
        self._pruner = Pruner(engine, state_dir)
        self._tasks: asyncio.TaskGroup | None = None
        self._df_refresh: asyncio.Task[None] | None = None
        self._last_reading: float | None = None
        self.samples_taken = 0

    @property
    def message_types(self) -> frozenset[str]:
        """Acks for sample batches and the two capacity requests."""
        return MONITORING_COORDINATOR_TYPES

    @property
    def capabilities(self) -> list[str]:
        """``monitoring.v1``."""
        return [MONITORING_CAPABILITY]

    async def run(self) -> None:
        """Sample until cancelled; own the request tasks."""
        # The spool stays open until the process exits: a delivery still finishing on the
        # closing link may use it, and SQLite recovers its WAL on the next start anyway.
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                tasks.create_task(self._sample_forever())
        finally:
            self._tasks = None

    async def attached(self, link: LinkContext) -> None:
        """Deliver the spool over this link for as long as it lives."""
        await self.delivery.deliver(link)

    def detached(self, link: LinkContext) -> None:
        """Forget batches in flight on the link (they stay spooled)."""
        self.delivery.detached(link)

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """A refused sample batch is resent after a pause, not after the ack timeout."""
        return self.delivery.refused(re, error, link)

    def receive(self, message: Any, link: LinkContext) -> None:
        """Route an ack at once; run capacity requests as tasks."""
        if isinstance(message, SamplesAck):
            self.delivery.acknowledge(message, link)
            return
        if self._tasks is None:
            raise Unavailable("monitoring is not running yet")
        if isinstance(message, CapacityInspect | CapacityPrune):
            self._tasks.create_task(self._answer(message, link))

    async def _answer(self, message: CapacityInspect | CapacityPrune, link: LinkContext) -> None:
        try:
            if isinstance(message, CapacityInspect):
                # The reply is numbered when sent, not now: the work below takes seconds and
                # other frames (samples, logs) go out meanwhile.
                reply: Any = await asyncio.to_thread(self._inspector.inspect, UNSTAMPED, message.id)
            else:
                logger.info(
                    "capacity prune (%s) of %s",
                    "dry run" if message.dry_run else "for real",
                    ", ".join(message.categories),
                )
                reply = await asyncio.to_thread(self._pruner.prune, message, UNSTAMPED)
        except Exception:
            logger.exception("%s %s failed", message.type, message.id)
            await self._fail(link, message.id, PlatformError(f"{message.type} failed on the agent"))
            return
        try:
            await link.send(reply)
        except Exception as exc:
            # The link closed meanwhile: the coordinator's request times out and is retried.
            logger.info("could not answer %s %s: %s", message.type, message.id, exc)

    @staticmethod
    async def _fail(link: LinkContext, re: int, error: PlatformError) -> None:
        try:
            await link.fail(re, error)
        except Exception as exc:
            logger.info("could not report a failed request %s: %s", re, exc)

    def _refresh_docker_disk(self) -> None:
        if self._tasks is None or not self._docker_disk.stale():
            return
        if self._df_refresh is not None and not self._df_refresh.done():
            return
        # Its own thread, off the sample's: /system/df can take seconds and must not delay one.
        self._df_refresh = self._tasks.create_task(self._refresh_safely())

    async def _refresh_safely(self) -> None:
        # A failure here must not end the task group (and the sampling with it).
        try:
            await asyncio.to_thread(self._docker_disk.refresh)
        except Exception:
            logger.exception("reading Docker's disk usage failed")

    def _sample_and_store(self) -> Sample:
        """Blocking: one reading and its spool row (one worker thread per sample)."""
        reading = self._sampler.collect()
        now = time.monotonic()
        elapsed = now - self._last_reading if self._last_reading is not None else self._interval
        self._last_reading = now
        observed_at = datetime.now(UTC)

        def make(sequence: int) -> Sample:
            return Sample(
                sample_id=new_sample_id(),
                sequence=sequence,
                observed_at=observed_at,
                interval_seconds=min(max(elapsed, 0.001), MAX_INTERVAL_SECONDS),
                totals=reading.totals,
                mounts=reading.mounts,
                containers=reading.containers,
                warnings=reading.warnings,
            )

        return self._spool.append(make)

    def _prime(self) -> None:
        self._sampler.collect()
        self._last_reading = time.monotonic()

    async def _sample_forever(self) -> None:
        loop = asyncio.get_running_loop()
        self._refresh_docker_disk()
        try:
            await asyncio.to_thread(self._prime)
        except Exception:
            logger.exception("priming the sampler failed")
        # A fixed grid from here on: a slow sample shortens the next wait instead of drifting.
        next_at = loop.time() + min(PRIME_SECONDS, self._interval)
        while True:
            await asyncio.sleep(max(next_at - loop.time(), 0))
            self._refresh_docker_disk()
            try:
                await asyncio.to_thread(self._sample_and_store)
                self.samples_taken += 1
                self.delivery.notify()
            except Exception:
                logger.exception("taking a sample failed; trying again at the next interval")
            next_at += self._interval
            late = loop.time() - next_at
            if late > 0:
                # Slots missed (suspended host, overloaded thread pool) are skipped, not bunched.
                next_at += math.ceil(late / self._interval) * self._interval
