"""Delivery of spooled samples over the current link: one batch in flight, deleted once acked."""

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from agent.features import LinkContext
from agent.monitoring.spool import Spool
from shared.errors import PlatformError
from shared.messages import UNSTAMPED
from shared.messages.monitoring import MAX_SAMPLES_PER_BATCH, SampleBatch, SamplesAck

logger = logging.getLogger(__name__)

ACK_TIMEOUT_SECONDS = 30.0
# Frames are limited to 1 MiB; a batch stays far below it (the rest of the frame is tiny).
MAX_BATCH_BYTES = 512 * 1024
MAX_BACKOFF_SECONDS = 60.0

RunBlocking = Callable[..., Awaitable[Any]]


class Delivery:
    """Sends the oldest unacked samples as one ``samples`` frame and waits for its ack.

    No ack within the timeout resends the same samples (the coordinator stores by ``sample_id``
    once), after a growing pause so an unhappy coordinator is not hammered. Samples leave the
    spool only after an ack, so a link dropping mid-batch loses nothing: the next link starts
    again from the oldest sample.
    """

    def __init__(
        self,
        spool: Spool,
        *,
        ack_timeout: float = ACK_TIMEOUT_SECONDS,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        run_blocking: RunBlocking = asyncio.to_thread,
    ) -> None:
        self._spool = spool
        self._ack_timeout = ack_timeout
        self._max_backoff = max_backoff
        self._run_blocking = run_blocking
        self._new_sample = asyncio.Event()
        self._pending: dict[tuple[LinkContext, int], asyncio.Future[SamplesAck]] = {}
        self.batches_sent = 0
        self.resends = 0

    def notify(self) -> None:
        """A sample was spooled: wake a delivery loop waiting for one."""
        self._new_sample.set()

    def acknowledge(self, ack: SamplesAck, link: LinkContext) -> None:
        """A ``samples_ack`` arrived (from the read loop; never blocks)."""
        future = self._pending.get((link, ack.re))
        if future is None or future.done():
            logger.debug("samples_ack for batch %s that is not waiting (late or unknown)", ack.re)
            return
        future.set_result(ack)

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """An error frame answered batch ``re`` (e.g. the coordinator is behind and asks to
        retry later): stop waiting for its ack now. False if no batch of ours is waiting."""
        future = self._pending.get((link, re))
        if future is None or future.done():
            return False
        future.set_exception(error)
        return True

    def detached(self, link: LinkContext) -> None:
        """The link is gone: nothing more will be acked on it."""
        for key in [key for key in self._pending if key[0] is link]:
            future = self._pending.pop(key)
            if not future.done():
                future.cancel()

    def _waiting(
        self,
        link: LinkContext,
        future: asyncio.Future[SamplesAck],
        sent: list[int],
        frame_id: int,
    ) -> None:
        # Registered before the frame is written: its ack may be read before the send returns.
        sent.append(frame_id)
        self._pending[(link, frame_id)] = future

    def _backoff(self, failures: int) -> float:
        # Capped exponential with jitter: agents answered by one sick coordinator spread out.
        ceiling = min(self._max_backoff, 2.0 ** (failures - 1))
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311

    async def deliver(self, link: LinkContext) -> None:
        """Run for the link's lifetime (cancelled when it closes)."""
        failures = 0
        loop = asyncio.get_running_loop()
        while True:
            self._new_sample.clear()
            batch = await self._run_blocking(
                self._spool.oldest, MAX_SAMPLES_PER_BATCH, MAX_BATCH_BYTES
            )
            if not batch:
                await self._new_sample.wait()
                continue
            future: asyncio.Future[SamplesAck] = loop.create_future()
            sent: list[int] = []  # the batch's frame id, learned as the frame is written
            frame_id = 0
            try:
                await link.send_tracked(
                    SampleBatch(id=UNSTAMPED, samples=batch),
                    functools.partial(self._waiting, link, future, sent),
                )
                frame_id = sent[0]
                self.batches_sent += 1
                ack = await asyncio.wait_for(future, self._ack_timeout)
            except (TimeoutError, PlatformError) as exc:
                # Unanswered or refused: the samples stay spooled and go again after a pause.
                failures += 1
                self.resends += 1
                pause = self._backoff(failures)
                reason = (
                    f"refused ({exc.code}: {exc.message})"
                    if isinstance(exc, PlatformError)
                    else f"not acked within {self._ack_timeout:.0f} s"
                )
                logger.warning(
                    "batch %d (%d samples) %s; resending in %.1f s",
                    frame_id,
                    len(batch),
                    reason,
                    pause,
                )
                await asyncio.sleep(pause)
                continue
            finally:
                for sent_id in sent:
                    self._pending.pop((link, sent_id), None)
            failures = 0
            logger.debug(
                "batch %d acked: %d stored, %d duplicates", frame_id, ack.stored, ack.duplicates
            )
            await self._run_blocking(self._spool.delete, [s.sample_id for s in batch])
