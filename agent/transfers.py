"""The machinery the agent's two transfer features share (backups over the link, and the
server-directory target): open transfers by id with the link that owns them, one request at a
time per transfer, the window's in-order ``seq`` check, reads answered ``eof`` past their end,
and the end of every transfer when its link goes or the daemon stops."""

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from agent.features import LinkContext
from shared.errors import PlatformError
from shared.messages import AgentMessage

logger = logging.getLogger(__name__)

# Read transfers at their end that still answer ``eof`` to the reads a window had in flight.
ENDED_READS = 64
# How long a stop waits for cancelled requests to unwind, and for ends already begun.
STOP_SECONDS = 10.0


class InOrderWindow:
    """The ``seq`` a transfer's next windowed read or write must carry: a window sends several
    requests ahead, and the link keeps their order, so one out of order means a lost or
    repeated request; it is refused, never reordered."""

    def __init__(self) -> None:
        self.next_seq = 0

    def admit(self, kind: str, seq: int | None) -> None:
        """Take request ``kind`` numbered ``seq`` if it is the next one; ``None`` is a request
        sent without a window (not counted)."""
        if seq is None:
            return
        if seq != self.next_seq:
            raise PlatformError(f"{kind} {seq} arrived out of order (expected {self.next_seq})")
        self.next_seq += 1


@dataclass(eq=False)
class Transfer:
    """One open transfer: the link it belongs to, the lock its requests take in turn, and its
    window. Features add what they move (``kw_only`` keeps their fields positional)."""

    link: LinkContext
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, kw_only=True)
    window: InOrderWindow = field(default_factory=InOrderWindow, kw_only=True)


class Windowed(Protocol):
    """A request a window may send ahead: its ``type`` and its ``seq`` (``None``: unwindowed)."""

    @property
    def type(self) -> str: ...

    @property
    def seq(self) -> int | None: ...


class Answer(Protocol):
    """What a step answers: at least whether a read reached its end."""

    eof: bool


T = TypeVar("T", bound=Transfer)
A = TypeVar("A", bound=Answer)


class TransferFeature(ABC, Generic[T, A]):
    """An agent feature serving transfers by id; a subclass names its window's messages and
    says how a request is served, how a transfer ends and how a failure is answered."""

    # The windowed reads (past their end they answer ``eof`` again) and writes.
    window_reads: ClassVar[tuple[type[Windowed], ...]] = ()
    window_writes: ClassVar[tuple[type[Windowed], ...]] = ()
    # What a request may fail with, answered as a ``failed`` reply (anything else is a bug).
    failures: ClassVar[tuple[type[Exception], ...]] = (PlatformError,)

    def __init__(self) -> None:
        self._transfers: dict[str, T] = {}
        self._requests: set[asyncio.Task[None]] = set()
        # Ends of a lost link's transfers: never cancelled, waited for at stop.
        self._ends: set[asyncio.Task[None]] = set()
        self._ended_reads: OrderedDict[str, LinkContext] = OrderedDict()

    async def attached(self, link: LinkContext) -> None:
        """Nothing to send on a new link."""

    def detached(self, link: LinkContext) -> None:
        """Transfers of the old link end."""
        for transfer_id, transfer in list(self._transfers.items()):
            if transfer.link is link:
                self._spawn(self._end(transfer_id), self._ends)
        for transfer_id, ended in list(self._ended_reads.items()):
            if ended is link:
                del self._ended_reads[transfer_id]

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """Nothing of this feature waits on an error frame."""
        return False

    def receive(self, message: Any, link: LinkContext) -> None:
        """Answer in a task of its own."""
        self._spawn(self._answer(message, link))

    def _spawn(self, work: Any, owner: set[asyncio.Task[None]] | None = None) -> None:
        tasks = self._requests if owner is None else owner
        task = asyncio.get_running_loop().create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _stop(self) -> None:
        """The daemon stops: cancel the requests in flight and wait for them to unwind, let
        the ends already begun finish (a cancelled end could leave a helper or a file behind),
        then end every transfer still open. Each wait is bounded."""
        requests = list(self._requests)
        for task in requests:
            task.cancel()
        for tasks in (requests, list(self._ends)):
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=STOP_SECONDS)
                for task in late:
                    logger.warning("a transfer task did not finish within %s s", STOP_SECONDS)
                    task.cancel()
        for transfer_id in list(self._transfers):
            await self._end(transfer_id)

    @abstractmethod
    async def _serve(self, message: Any, link: LinkContext) -> AgentMessage:
        """The ``ok`` reply to ``message`` (raising one of ``failures`` fails it)."""

    @abstractmethod
    async def _step(self, message: Any, transfer: T) -> A:
        """One request of an open transfer, its turn taken and its ``seq`` checked; a read that
        answers ``eof`` leaves ending the transfer to the base."""

    @abstractmethod
    async def _end(self, transfer_id: str) -> None:
        """Close transfer ``transfer_id`` and remove what it left half-done (no-op if gone)."""

    @abstractmethod
    def _failed(self, message: Any, exc: Exception) -> AgentMessage:
        """The ``failed`` reply to ``message`` (logged here)."""

    @abstractmethod
    def _transfer_of(self, message: Any) -> str | None:
        """The id of the transfer ``message`` belongs to, if any (ended when it fails)."""

    async def _answer(self, message: Any, link: LinkContext) -> None:
        """Serve ``message``; a failure ends its transfer and is answered ``failed``."""
        try:
            reply = await self._serve(message, link)
        except self.failures as exc:
            reply = self._failed(message, exc)
            if (transfer_id := self._transfer_of(message)) is not None:
                await self._end(transfer_id)
        await self._send(link, reply, message.id)

    @staticmethod
    async def _send(link: LinkContext, reply: AgentMessage, re: int) -> None:
        try:
            await link.send(reply)
        except Exception as exc:  # the link closed under the reply; detached() ends the transfer
            logger.debug("could not answer %s: %s", re, exc)

    async def _in_turn(self, transfer_id: str, message: Any, link: LinkContext, ended: A) -> A:
        """Run ``message`` on its open transfer once the transfer's earlier requests are done;
        ``ended`` answers a windowed read sent before its transfer's end was seen."""
        transfer = self._transfers.get(transfer_id)
        if self._past_end(transfer_id, message, link, transfer):
            return ended
        if transfer is None or transfer.link is not link:
            raise PlatformError(f"no transfer {transfer_id!r} is open on this link")
        async with transfer.lock:
            current = self._transfers.get(transfer_id)
            if self._past_end(transfer_id, message, link, current):
                return ended
            if current is not transfer:
                # Ended (failed or aborted) while this request waited its turn.
                raise PlatformError(f"transfer {transfer_id!r} ended")
            if isinstance(message, self.window_reads + self.window_writes):
                transfer.window.admit(message.type, message.seq)
            answer = await self._step(message, transfer)
            if answer.eof and isinstance(message, self.window_reads):
                # Noted before the transfer ends: ending awaits (a volume's helper is removed,
                # a file closes in a thread), and a windowed read arriving meanwhile must find
                # the end, not a missing transfer.
                if message.seq is not None:
                    self._ended_reads[transfer_id] = link
                    while len(self._ended_reads) > ENDED_READS:
                        self._ended_reads.popitem(last=False)
                await self._end(transfer_id)
            return answer

    def _past_end(
        self, transfer_id: str, message: Any, link: LinkContext, transfer: T | None
    ) -> bool:
        """A windowed read sent before its transfer's end was seen (answered ``eof`` again)."""
        return (
            transfer is None
            and isinstance(message, self.window_reads)
            and message.seq is not None
            and self._ended_reads.get(transfer_id) is link
        )
