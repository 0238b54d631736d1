"""Several backup chunks in flight over an agent's link (a window), in order: the next reads or
writes go out while the oldest one's reply is awaited, so the link, the agent and the
coordinator's encryption and disk work overlap instead of taking turns.

Every request carries its ``seq`` (0, 1, 2, ...): the agent refuses one out of order, so order
never rests on how tasks happen to be scheduled. Replies are consumed strictly in ``seq`` order,
and the first one that failed (or a lost link, or a timeout) ends the transfer with that error,
after the requests still in flight were answered. Memory stays bounded: at most ``window``
chunks (each at most ``MAX_CHUNK_BYTES``) are held on either side. Agents that do not advertise
``backups.window.v1`` get a window of one and no ``seq``: exactly the old one-at-a-time exchange.
"""

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Final

from coordinator.hub.session import AgentSession
from shared.messages import BackupRead, BackupReply, CoordinatorMessage, RestoreWrite
from shared.messages.backups import BACKUP_WINDOW_CAPABILITY

# Chunks in flight per transfer with agents that check ``seq`` (8 x 384 KiB = 3 MiB at most).
WINDOW: Final = 8

Ask = Callable[[AgentSession, Callable[[int], CoordinatorMessage], float], Awaitable[BackupReply]]


def window_of(session: AgentSession, capability: str = BACKUP_WINDOW_CAPABILITY) -> int:
    """How many chunks may be in flight to ``session``'s agent (1, and no ``seq``, unless it
    advertised ``capability``)."""
    return WINDOW if capability in session.capabilities else 1


class _InFlight:
    """Requests sent and not yet consumed, oldest first."""

    def __init__(self, session: AgentSession, ask: Ask, timeout: float) -> None:
        self._session = session
        self._ask = ask
        self._timeout = timeout
        self._tasks: deque[asyncio.Task[BackupReply]] = deque()

    def __len__(self) -> int:
        return len(self._tasks)

    def send(self, build: Callable[[int], CoordinatorMessage]) -> None:
        # Tasks start in creation order and the session numbers frames under a FIFO lock, so
        # they go out in ``seq`` order; the agent's check makes any other order a failure.
        coro = self._ask(self._session, build, self._timeout)
        self._tasks.append(asyncio.ensure_future(coro))

    async def oldest(self) -> BackupReply:
        """The oldest request's reply; its failure (raised) ends the transfer."""
        return await self._tasks.popleft()

    async def settle(self, cancel: bool) -> None:
        """Wait for what is still in flight (answered quickly once the agent ended the
        transfer, or failed by a lost link), or cancel it when the transfer is cancelled."""
        tasks = list(self._tasks)
        self._tasks.clear()
        for task in tasks:
            if cancel:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def read_replies(
    session: AgentSession, backup_id: str, window: int, ask: Ask, timeout: float
) -> AsyncGenerator[BackupReply]:
    """``backup_read`` replies of transfer ``backup_id`` in order, up to and including the
    ``eof`` one, with ``window`` reads in flight (the next is sent before a reply is yielded,
    so the caller's work on it overlaps the link)."""
    flight = _InFlight(session, ask, timeout)
    seq = 0

    def read() -> None:
        nonlocal seq
        at = seq if window > 1 else None
        flight.send(lambda mid: BackupRead(id=mid, backup_id=backup_id, seq=at))
        seq += 1

    cancelled = True
    try:
        for _ in range(window):
            read()
        while True:
            reply = await flight.oldest()
            if reply.eof:
                cancelled = False
                yield reply
                return
            read()
            yield reply
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
    """Send every base64 chunk of ``chunks`` as ``restore_write`` of transfer ``backup_id``,
    with up to ``window`` in flight; return once every one was answered ``ok``. The next chunk
    is produced (read, decrypted) while the ones before it are on the wire."""
    flight = _InFlight(session, ask, timeout)
    seq = 0
    cancelled = True
    try:
        async for data in chunks:
            if len(flight) >= window:
                await flight.oldest()
            at = seq if window > 1 else None
            flight.send(_write(backup_id, data, at))
            seq += 1
        while len(flight):
            await flight.oldest()
        cancelled = False
    except asyncio.CancelledError:
        raise
    except BaseException:
        cancelled = False
        raise
    finally:
        await flight.settle(cancel=cancelled)


def _write(backup_id: str, data: str, seq: int | None) -> Callable[[int], CoordinatorMessage]:
    def build(mid: int) -> CoordinatorMessage:
        return RestoreWrite(id=mid, backup_id=backup_id, data=data, seq=seq)

    return build
