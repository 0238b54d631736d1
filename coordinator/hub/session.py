"""One connected agent: serialised sends with a deadline, and request/reply correlation by id."""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from shared.errors import PlatformError, Timeout, Unavailable, error_from_body
from shared.messages import (
    UNSTAMPED,
    AgentMessage,
    CoordinatorMessage,
    ErrorMessage,
    IdGuard,
    IdSequence,
    stamp,
)
from shared.wire import dump_json

logger = logging.getLogger(__name__)

# A peer that cannot take a frame within this long is treated as gone (its socket is closed).
SEND_TIMEOUT_SECONDS: Final = 10.0


class AgentSession:
    """The coordinator's side of one authenticated agent connection."""

    def __init__(self, ws: web.WebSocketResponse, server_id: str, *, ids: IdSequence) -> None:
        self.ws = ws
        self.server_id = server_id
        self.connected_at = datetime.now(UTC)
        self.last_seen = self.connected_at
        self.agent_version: str | None = None
        # What the agent said it can do (``hello.capabilities``), for optional wire behaviour.
        self.capabilities: frozenset[str] = frozenset()
        self.guard = IdGuard()
        self._ids = ids
        self._pending: dict[int, asyncio.Future[AgentMessage]] = {}
        # Lazily created: most idle sessions never send concurrently, and 10k locks add up.
        self._send_lock: asyncio.Lock | None = None

    def next_id(self) -> int:
        """Return a fresh id for building a frame; ``send`` stamps the final one when it writes.

        Kept for callers that build frames with a number: any number works, the link's ids
        rise in the order frames are written whatever a caller took earlier.
        """
        return self._ids.next()

    def touch(self) -> None:
        """Record that a frame just arrived."""
        self.last_seen = datetime.now(UTC)

    async def send(self, message: CoordinatorMessage) -> None:
        """Send one frame, numbered as it is written; a peer that stalls past the deadline is
        disconnected."""
        await self._send(message, None)

    async def _send(self, message: CoordinatorMessage, on_id: Callable[[int], None] | None) -> None:
        if self.ws.closed:
            raise Unavailable("the agent's connection is closed")
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        try:
            async with self._send_lock, asyncio.timeout(SEND_TIMEOUT_SECONDS):
                # Numbered under the write lock: a frame built early and sent late still goes
                # out with an id above every frame written before it (the agent refuses less).
                frame_id = self._ids.next()
                if on_id is not None:
                    on_id(frame_id)
                await self.ws.send_str(dump_json(stamp(message, frame_id)))
        except TimeoutError:
            logger.warning("[%s] agent is not reading; closing its link", self.server_id)
            await self.close(1011, "send timed out")
            raise Unavailable("the agent did not accept the frame in time") from None
        except ConnectionError as exc:
            raise Unavailable("the agent's connection dropped") from exc

    async def send_error(self, error: PlatformError, re: int | None) -> None:
        """Answer a frame with an error frame; the connection stays open."""
        await self.send(ErrorMessage(id=UNSTAMPED, re=re, error=error.to_body()))

    async def request(
        self, build: Callable[[int], CoordinatorMessage], timeout: float
    ) -> AgentMessage:
        """Send a request and wait for the reply whose ``re`` matches the id it was sent with.

        Raises:
            Timeout: no reply within ``timeout`` seconds.
            Unavailable: the link closed before the reply.
            PlatformError: the agent answered with an error frame (re-raised by its code).
        """
        future: asyncio.Future[AgentMessage] = asyncio.get_running_loop().create_future()
        sent: list[int] = []

        def waiting(frame_id: int) -> None:
            # Registered before the frame is written, so even an instant reply finds it.
            sent.append(frame_id)
            self._pending[frame_id] = future

        try:
            await self._send(build(UNSTAMPED), waiting)
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            raise Timeout(f"the agent did not answer within {timeout:g} s") from None
        finally:
            for frame_id in sent:
                self._pending.pop(frame_id, None)
        if isinstance(reply, ErrorMessage):
            raise error_from_body(reply.error)
        return reply

    def resolve(self, re: int | None, reply: AgentMessage) -> bool:
        """Complete the pending request ``re``; return False if nothing was waiting for it."""
        future = self._pending.get(re) if re is not None else None
        if future is None or future.done():
            return False
        future.set_result(reply)
        return True

    def fail_pending(self) -> None:
        """Fail every waiting request (called when the link closes)."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    Unavailable(
                        f"the agent of server {self.server_id} disconnected",
                        details={"serverId": self.server_id},
                    )
                )
        self._pending.clear()

    async def close(self, code: int, reason: str) -> None:
        """Close the socket with an application close code and a short reason."""
        if not self.ws.closed:
            await self.ws.close(code=code, message=reason.encode("utf-8")[:120])
