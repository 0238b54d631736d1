"""One log stream: a reader task per container feeding a bounded buffer, and a sender that
ships ``log_chunk`` frames only while it holds credit (one credit = one chunk)."""

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Final

from agent.features import LinkContext
from agent.logstream.buffer import Buffered, LineBuffer, SourceRef
from agent.logstream.cursor import Position, PositionTracker, since_for
from agent.logstream.decode import LineDecoder
from agent.runtime import ContainerInfo, ContainerRuntime, EngineError
from shared.messages import UNSTAMPED
from shared.messages.logs import LogChunk, LogEnd, LogEndReason, LogLine, LogOpen

logger = logging.getLogger(__name__)

# A chunk goes out when this much text is waiting, or BATCH_SECONDS after its first line.
CHUNK_TEXT_BYTES: Final = 64 * 1024
# Bounds the JSON frame well under 1 MiB even for escape-heavy text (6 bytes per char).
CHUNK_MAX_LINES: Final = 2000
BATCH_SECONDS: Final = 0.05
WATCH_SECONDS: Final = 1.0
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class LogStream:
    """Streams the logs of ``sources`` to ``link`` as ``open`` asks; ``run`` until done."""

    def __init__(
        self,
        api: ContainerRuntime,
        link: LinkContext,
        request: LogOpen,
        sources: list[ContainerInfo],
        *,
        known: set[str],
        resume: dict[str, Position],
    ) -> None:
        self.link = link
        self.stream_id = request.stream_id
        self._api = api
        self._request = request
        self._sources = sources
        self._known = set(known)
        self._resume = resume
        self._tracker = PositionTracker(resume)
        self._credit = request.initial_credit
        self._credit_event = asyncio.Event()
        self._buffer = LineBuffer(time.time_ns() if request.follow else 2**63)
        self._readers = 0
        self._seq = 0
        self._failure: str | None = None
        self._watching = request.follow and request.follow_deployments

    def grant(self, chunks: int) -> None:
        """The coordinator consumed chunks: it may receive ``chunks`` more."""
        self._credit += chunks
        self._credit_event.set()

    async def run(self) -> None:
        """Read and send until the history ends, the containers exit, or cancellation."""
        try:
            async with asyncio.TaskGroup() as tasks:
                for source in self._sources:
                    self._start_reader(tasks, source)
                if self._watching:
                    tasks.create_task(self._watch(tasks))
                reason = await self._send_loop()
                await self.end(reason, self._failure or "")
                raise _Finished  # cancels the readers and the watcher
        except* _Finished:
            pass

    async def end(self, reason: LogEndReason, message: str = "") -> None:
        """Send the stream's ``log_end``."""
        await self.link.send(
            LogEnd(
                id=UNSTAMPED,
                stream_id=self.stream_id,
                reason=reason,
                message=message[:1000],
            )
        )

    def _start_reader(self, tasks: asyncio.TaskGroup, source: ContainerInfo) -> None:
        self._readers += 1
        tasks.create_task(self._read(source))

    async def _watch(self, tasks: asyncio.TaskGroup) -> None:
        # Zero-downtime rollouts start the new container before stopping the old one, so a
        # new container shows up while the old one is still followed.
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                found = await self._api.log_sources(self._request.resource_id)
            except EngineError:
                continue
            for info in sorted(found, key=lambda c: c.created):
                if info.container_id not in self._known:
                    self._known.add(info.container_id)
                    self._start_reader(tasks, info)

    async def _read(self, source: ContainerInfo) -> None:
        try:
            await self._read_container(source)
        except EngineError as exc:
            if exc.status != 404:  # a container removed meanwhile simply has no more lines
                self._failure = f"reading {source.short_id}: {exc}"[:1000]
        finally:
            self._readers -= 1
            self._buffer.wake()

    async def _read_container(self, source: ContainerInfo) -> None:
        ref = SourceRef(source.short_id, source.deployment_id)
        position = self._resume.get(source.short_id)
        request = self._request
        since: str | None = None
        tail: int | None = None
        if position is not None:
            since = since_for(position)
        else:
            since = _since_text(request.since) if request.since is not None else None
            # Containers that appear later (follow_deployments) or that a resumed cursor did
            # not know yet are read from their first line.
            initial = source.container_id in self._initial_ids
            tail = request.tail_lines if initial and not self._resume else None
        tty = await self._api.uses_tty(source.container_id)
        response = await self._api.open_logs(
            source.container_id, follow=request.follow, tail=tail, since=since
        )
        decoder = LineDecoder(tty)
        last_ts, index = -1, 0
        skip_until = position
        try:
            async for data in response.content.iter_any():
                batch: list[Buffered] = []
                append = batch.append
                for stream, ts_ns, timestamp, message in decoder.feed(data):
                    if ts_ns == last_ts:
                        index += 1
                    else:
                        last_ts, index = ts_ns, 0
                    if skip_until is not None:
                        if (ts_ns, index) <= skip_until:
                            continue
                        skip_until = None
                    append((ref, index, stream, ts_ns, timestamp, message))
                await self._buffer.put(batch)
        except (OSError, TimeoutError) as exc:
            raise EngineError(str(exc)) from exc
        finally:
            response.close()

    @property
    def _initial_ids(self) -> set[str]:
        return {s.container_id for s in self._sources}

    async def _send_loop(self) -> LogEndReason:
        buffer = self._buffer
        while True:
            while self._credit <= 0:
                self._credit_event.clear()
                await self._credit_event.wait()
            if not len(buffer) and not buffer.dropped:
                # Following deployments, a stream outlives its containers: the next
                # deployment's container is picked up by the watcher.
                if self._readers == 0 and not self._watching:
                    return self._end_reason()
                await buffer.wait_data()
                continue
            # Let a batch build up unless a full chunk is already waiting or the readers are
            # done: one frame per 50 ms instead of one per line for a trickling container.
            if buffer.bytes < CHUNK_TEXT_BYTES and self._readers > 0:
                await asyncio.sleep(BATCH_SECONDS)
            taken, dropped = buffer.take(CHUNK_TEXT_BYTES, CHUNK_MAX_LINES)
            await self._send_chunk(taken, dropped)

    def _end_reason(self) -> LogEndReason:
        if self._failure is not None:
            return "error"
        return "container-exited" if self._request.follow else "history-complete"

    async def _send_chunk(self, taken: list[Buffered], dropped: int) -> None:
        advance = self._tracker.advance
        entries: list[LogLine] = [
            {
                "container": source.short_id,
                "deployment": source.deployment_id,
                "stream": stream,
                "timestamp": timestamp,
                "cursor": advance(source.short_id, (ts_ns, index)),
                "message": message,
            }
            for source, index, stream, ts_ns, timestamp, message in taken
        ]
        self._seq += 1
        self._credit -= 1
        chunk = LogChunk.model_construct(
            type="log_chunk",
            id=UNSTAMPED,
            stream_id=self.stream_id,
            seq=self._seq,
            entries=entries,
            dropped=dropped,
            history_complete=False,
        )
        await self.link.send(chunk)


class _Finished(Exception):
    """Raised inside the stream's task group to cancel the readers once the end is sent."""


def _since_text(moment: datetime) -> str:
    """Docker's ``since`` for an aware time, computed in whole nanoseconds.

    Not through ``timestamp()``: a float of today's epoch seconds is only exact to ~0.2 µs, so a
    ``since`` taken from a line's own (microsecond) timestamp could land after that line.
    One nanosecond earlier, as in ``since_for``, so an exclusive ``since`` keeps the line too.
    """
    delta = moment - _EPOCH
    nanoseconds = ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1_000
    return since_for((nanoseconds, 0))
