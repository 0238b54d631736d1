"""Several backup chunks in flight over an agent's link (a window), in order: the next reads or
writes go out while the oldest one's reply is awaited, so the link, the agent and the
coordinator's encryption and disk work overlap instead of taking turns.

Every request carries its ``seq`` (0, 1, 2, ...): the agent refuses one out of order, so order
never rests on how tasks happen to be scheduled. Replies are consumed strictly in ``seq`` order,
and the first one that failed (or a lost link, or a timeout) ends the transfer with that error,
after the requests still in flight were answered. Memory stays bounded: at most ``window``
chunks (each at most ``MAX_CHUNK_BYTES``) are held on either side. Agents that do not advertise
the capability get a window of one and no ``seq``: exactly the old one-at-a-time exchange.
Used by the database and volume transfers (runner.py) and the server-directory target
(dir_target.py).
"""

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Final, Generic, TypeVar

from coordinator.hub.session import AgentSession
from shared.messages import BackupRead, BackupReply, CoordinatorMessage, RestoreWrite
from shared.messages.backups import BACKUP_WINDOW_CAPABILITY

# Chunks in flight per transfer with agents that check ``seq`` (8 x 384 KiB = 3 MiB at most).
WINDOW: Final = 8

Reply = TypeVar("Reply")
Build = Callable[[int], CoordinatorMessage]
Ask = Callable[[AgentSession, Build, float], Awaitable[BackupReply]]
# A request for ``seq`` (None: no window, the old exchange).
Request = Callable[[int | None], Build]


def window_of(session: AgentSession, capability: str = BACKUP_WINDOW_CAPABILITY) -> int:
    """How many chunks may be in flight to ``session``'s agent (1, and no ``seq``, unless it
    advertised ``capability``)."""
    return WINDOW if capability in session.capabilities else 1


class InFlight(Generic[Reply]):
    """Requests of one transfer sent and not yet consumed, oldest first, numbered by ``seq``."""

    def __init__(self, ask: Callable[[Build], Awaitable[Reply]], window: int) -> None:
        self._ask = ask
        self.window = window
        self._seq = 0
        self._tasks: deque[asyncio.Task[Reply]] = deque()

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def full(self) -> bool:
        """As many requests are in flight as the window allows."""
        return len(self._tasks) >= self.window

    def send(self, request: Request) -> None:
        """Send the next request (numbered when the window is more than one)."""
        # Tasks start in creation order and the session numbers frames under a FIFO lock, so
        # they go out in ``seq`` order; the agent's check makes any other order a failure.
        build = request(self._seq if self.window > 1 else None)
        self._seq += 1

        async def asking() -> Reply:
            return await self._ask(build)

        self._tasks.append(asyncio.ensure_future(asking()))

    async def oldest(self) -> Reply:
        """The oldest request's reply; its failure (raised) ends the transfer."""
        return await self._tasks.popleft()

    async def drain(self) -> None:
        """Every request in flight answered, in order (the first failure raised)."""
        while self._tasks:
            await self.oldest()

    async def settle(self, cancel: bool) -> None:
        """Wait for what is still in flight (answered quickly once the agent ended the
        transfer, or failed by a lost link), or cancel it when the transfer is cancelled."""
        tasks = list(self._tasks)
        self._tasks.clear()
        for task in tasks:
            if cancel:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def in_order(
    flight: InFlight[Reply], request: Request, ended: Callable[[Reply], bool]
) -> AsyncGenerator[Reply]:
    """Replies to ``request`` repeated with ``flight``'s window in flight, in order, up to and
    including the one ``ended`` says is the last (the next request goes out before a reply is
    yielded, so the caller's work on it overlaps the link). Past-the-end requests a window
    had sent are answered before this ends (the agent answers them as the end again)."""
    cancelled = True
    try:
        while not flight.full:
            flight.send(request)
        while True:
            reply = await flight.oldest()
            if ended(reply):
                cancelled = False
                yield reply
                return
            flight.send(request)
            yield reply
    except asyncio.CancelledError:
        raise
    except BaseException:
        cancelled = False
        raise
    finally:
        await flight.settle(cancel=cancelled)


def read_replies(
    session: AgentSession, backup_id: str, window: int, ask: Ask, timeout: float
) -> AsyncGenerator[BackupReply]:
    """``backup_read`` replies of transfer ``backup_id`` in order, up to the ``eof`` one."""

    def read(seq: int | None) -> Build:
        return lambda mid: BackupRead(id=mid, backup_id=backup_id, seq=seq)

    flight = InFlight(lambda build: ask(session, build, timeout), window)
    return in_order(flight, read, lambda reply: reply.eof)


async def write_all(flight: InFlight[Reply], requests: AsyncIterator[Request]) -> None:
    """Send every request of ``requests`` with ``flight``'s window in flight; return once every
    one was answered (the next one is produced while the ones before it are on the wire)."""
    cancelled = True
    try:
        async for request in requests:
            if flight.full:
                await flight.oldest()
            flight.send(request)
        await flight.drain()
        cancelled = False
    except asyncio.CancelledError:
        raise
    except BaseException:
        cancelled = False
        raise
    finally:
        await flight.settle(cancel=cancelled)


async def write_chunks(
    session: AgentSession,
    backup_id: str,
    chunks: AsyncIterator[str],
    window: int,
    ask: Ask,
    timeout: float,
) -> None:
    """Send every base64 chunk of ``chunks`` as ``restore_write`` of transfer ``backup_id``."""

    async def requests() -> AsyncGenerator[Request]:
        async for data in chunks:
            yield _write(backup_id, data)

    flight = InFlight(lambda build: ask(session, build, timeout), window)
    async with aclosing(requests()) as each:
        await write_all(flight, each)


def _write(backup_id: str, data: str) -> Request:
    def request(seq: int | None) -> Build:
        return lambda mid: RestoreWrite(id=mid, backup_id=backup_id, data=data, seq=seq)

    return request
