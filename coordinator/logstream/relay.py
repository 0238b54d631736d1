"""The coordinator end of log streams: per stream a bounded queue the agent can never overflow
(its size is the credit the agent holds), credit handed back as the HTTP client consumes."""

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from typing import Any, Final

from coordinator.hub.session import AgentSession
from shared.errors import PlatformError, Unavailable
from shared.messages import Hello
from shared.messages.logs import (
    LogChunk,
    LogClose,
    LogCredit,
    LogEnd,
    LogOpen,
    LogOpened,
    LogsAgentMessage,
)
from shared.messages.typeset import unsolicited_types

logger = logging.getLogger(__name__)

INITIAL_CREDIT: Final = 8
OPEN_TIMEOUT_SECONDS: Final = 15.0


class RelayStream:
    """One open stream: chunks queued in arrival order, then the end."""

    def __init__(self, session: AgentSession, stream_id: str, credit: int) -> None:
        self.session = session
        self.stream_id = stream_id
        self.opened: LogOpened | None = None
        self.end: LogEnd | None = None
        self._capacity = credit
        self._chunks: deque[LogChunk] = deque()
        self._wake = asyncio.Event()
        self._closed = False

    def push(self, chunk: LogChunk) -> bool:
        """Queue a chunk; False when the agent sent more than its credit allowed."""
        if len(self._chunks) >= self._capacity:
            return False
        self._chunks.append(chunk)
        self._wake.set()
        return True

    def finish(self, end: LogEnd) -> None:
        """No more chunks will come (queued ones are still delivered first)."""
        if self.end is None:
            self.end = end
        self._wake.set()

    @property
    def queued(self) -> int:
        """Chunks waiting for the client."""
        return len(self._chunks)

    async def next(self, timeout: float) -> LogChunk | LogEnd | None:
        """The next chunk, else the end once everything was delivered; None on timeout."""
        while True:
            if self._chunks:
                return self._chunks.popleft()
            if self.end is not None:
                return self.end
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                return None

    async def grant(self, chunks: int = 1) -> None:
        """Give the agent credit for ``chunks`` more (the client consumed that many)."""
        if self.end is not None or self._closed:
            return
        # A dropped link ends the stream through on_disconnected; nothing to do here.
        with contextlib.suppress(Unavailable):
            await self.session.send(
                LogCredit(id=self.session.next_id(), stream_id=self.stream_id, chunks=chunks)
            )

    async def close(self) -> None:
        """Tell the agent to stop (the client left before the end); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.end is None:
            with contextlib.suppress(Unavailable):
                await self.session.send(
                    LogClose(id=self.session.next_id(), stream_id=self.stream_id)
                )


class LogRelay:
    """Link listener for ``log_chunk``/``log_end`` and the factory of relay streams."""

    def __init__(self) -> None:
        self._streams: dict[str, RelayStream] = {}

    @property
    def message_types(self) -> frozenset[str]:
        """Unsolicited stream frames (``log_opened`` is a reply and resolves ``open``)."""
        return unsolicited_types(LogsAgentMessage)

    @property
    def open_streams(self) -> int:
        """Streams currently relayed (for tests and diagnostics)."""
        return len(self._streams)

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """Nothing to do: streams begin with an API request."""

    async def on_message(self, session: AgentSession, message: Any) -> None:
        """Queue a chunk or end a stream; never waits on a client."""
        stream = self._streams.get(message.stream_id)
        if stream is None or stream.session is not session:
            return  # a stream the client already closed: late frames are expected
        if isinstance(message, LogChunk):
            if not stream.push(message):
                logger.warning("[%s] log stream %s exceeded its credit", session.server_id,
                               stream.stream_id)  # fmt: skip
                self._forget(stream)
                await stream.close()  # before finish: close only tells a stream not yet ended
                stream.finish(_end(stream.stream_id, "the agent exceeded its credit"))
        elif isinstance(message, LogEnd):
            self._forget(stream)
            stream.finish(message)

    def on_disconnected(self, session: AgentSession) -> None:
        """End every stream of the lost link with an error (the client sees ``end``)."""
        for stream in [s for s in self._streams.values() if s.session is session]:
            self._forget(stream)
            stream.finish(
                _end(stream.stream_id, f"the agent of server {session.server_id} disconnected")
            )

    def _forget(self, stream: RelayStream) -> None:
        if self._streams.get(stream.stream_id) is stream:
            del self._streams[stream.stream_id]

    async def open(
        self, session: AgentSession, request: dict[str, Any], credit: int = INITIAL_CREDIT
    ) -> RelayStream:
        """Open a stream on ``session`` with the ``LogOpen`` fields in ``request``.

        Registered before the request goes out: the agent's first chunk can be routed before
        the caller resumes from the ``log_opened`` reply.
        """
        stream_id = uuid.uuid4().hex
        stream = RelayStream(session, stream_id, credit)
        self._streams[stream_id] = stream
        try:
            reply = await session.request(
                lambda id: LogOpen(id=id, stream_id=stream_id, initial_credit=credit, **request),
                timeout=OPEN_TIMEOUT_SECONDS,
            )
        except BaseException:
            self._forget(stream)
            await stream.close()
            raise
        if not isinstance(reply, LogOpened):
            self._forget(stream)
            await stream.close()
            raise PlatformError("the agent answered log_open with an unexpected frame")
        stream.opened = reply
        return stream

    async def release(self, stream: RelayStream) -> None:
        """The client is done with ``stream``: stop the agent if it still streams."""
        self._forget(stream)
        await stream.close()


def _end(stream_id: str, message: str) -> LogEnd:
    return LogEnd(id=0, stream_id=stream_id, reason="error", message=message)
