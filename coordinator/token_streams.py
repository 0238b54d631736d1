"""Open streams (server-sent events) by API token, so a stream ends when its token stops working.

A stream is authorized once, when it opens; without this a revoked, rotated or expired token's
log or timeline stream would go on for as long as the client keeps it open. Ending one closes
its connection, which the client sees at once, and cancels the request's task, so the writer
stops too.
"""

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from coordinator.auth import Principal


@dataclass(eq=False)
class _Stream:
    request: web.Request
    task: "asyncio.Task[object] | None"

    def cut(self) -> None:
        """Close the connection (the client sees the end now) and stop the writer, which would
        otherwise only notice at its next write."""
        transport = self.request.transport
        if transport is not None and not transport.is_closing():
            transport.close()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()


class TokenStreams:
    """The requests streaming to each API token right now."""

    def __init__(self) -> None:
        self._open: dict[str, set[_Stream]] = {}

    @contextlib.contextmanager
    def watching(self, request: web.Request, actor: Principal) -> Iterator[None]:
        """Track ``request`` while its stream runs; end it when ``actor``'s token expires."""
        token_id = actor.token_id
        if token_id is None:
            yield
            return
        stream = _Stream(request, asyncio.current_task())
        self._open.setdefault(token_id, set()).add(stream)
        timer: asyncio.TimerHandle | None = None
        expires_at = actor.credential_expires_at
        if expires_at is not None:
            delay = max(0.0, (expires_at - datetime.now(UTC)).total_seconds())
            timer = asyncio.get_running_loop().call_later(delay, stream.cut)
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
            streams = self._open.get(token_id)
            if streams is not None:
                streams.discard(stream)
                if not streams:
                    del self._open[token_id]

    def open_count(self) -> int:
        """How many streams are open (all tokens)."""
        return sum(len(streams) for streams in self._open.values())

    def end(self, token_id: str) -> int:
        """End every stream of ``token_id`` (revoked or rotated); return how many were open."""
        streams = self._open.pop(token_id, set())
        for stream in streams:
            stream.cut()
        return len(streams)


TOKEN_STREAMS_KEY = web.AppKey("token_streams", TokenStreams)
