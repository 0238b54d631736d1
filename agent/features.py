"""The seam between the link and the agent's features (monitoring, logs, terminals): what a
feature must provide, and the handle on the current link it is given."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shared.errors import PlatformError
from shared.messages import UNSTAMPED, AgentMessage, ErrorMessage, IdSequence, stamp
from shared.wire import dump_json

logger = logging.getLogger(__name__)

Send = Callable[[AgentMessage], Awaitable[None]]
OnId = Callable[[int], None]
TrackedSend = Callable[[AgentMessage, OnId], Awaitable[None]]


class FrameWriter:
    """The link's one write path: numbers each frame as it is written, under one lock.

    Frames are built with a placeholder id; the id is stamped here, so a reply that took
    seconds to compute still gets an id above every frame sent meanwhile (the peer refuses
    ids that do not rise).
    """

    def __init__(self, write: Callable[[str], Awaitable[None]], ids: IdSequence) -> None:
        self._write = write
        self._ids = ids
        self._lock = asyncio.Lock()

    async def send(self, message: AgentMessage) -> None:
        """Stamp and write one frame."""
        await self.send_tracked(message, None)

    async def send_tracked(self, message: AgentMessage, on_id: OnId | None) -> None:
        """Stamp and write one frame; ``on_id`` learns its id before it is written, so a
        reply can never arrive before the sender knows what to wait for."""
        async with self._lock:
            frame_id = self._ids.next()
            if on_id is not None:
                on_id(frame_id)
            await self._write(dump_json(stamp(message, frame_id)))


@dataclass(frozen=True, eq=False)
class LinkContext:
    """One live link: send frames on it. Identity tells links apart.

    ``send`` stamps each frame's id when it is written (see ``FrameWriter``); ``tracked`` does
    the same and reports the id, for frames whose answer is awaited.
    """

    send: Send
    ids: IdSequence
    tracked: TrackedSend | None = None

    async def send_tracked(self, message: AgentMessage, on_id: OnId) -> None:
        """Send a frame and learn the id it went out with (before it is written)."""
        if self.tracked is not None:
            await self.tracked(message, on_id)
            return
        # A link without a stamping writer (test doubles): the id is final here.
        frame_id = self.ids.next()
        on_id(frame_id)
        await self.send(stamp(message, frame_id))

    async def fail(self, re: int | None, error: PlatformError) -> None:
        """Answer frame ``re`` with an error frame (the link stays up)."""
        await self.send(ErrorMessage(id=UNSTAMPED, re=re, error=error.to_body()))


class AgentFeature(Protocol):
    """A feature the daemon owns for its whole life and attaches to each link in turn.

    ``receive`` is called from the link's read loop in frame order and must not block: a
    request that needs work spawns a task in the feature's own task group (started by
    ``run``), so one slow request never delays another frame, a keystroke, or a credit.
    """

    @property
    def message_types(self) -> frozenset[str]:
        """The ``type`` values of the coordinator frames this feature consumes."""
        ...

    @property
    def capabilities(self) -> list[str]:
        """Capability strings to advertise in ``hello``."""
        ...

    async def run(self) -> None:
        """Daemon-lifetime work (sampling, the task group for requests) until cancelled."""

    async def attached(self, link: LinkContext) -> None:
        """A link is up (after ``welcome``); may run for the link's lifetime (it is cancelled
        when the link closes)."""

    def detached(self, link: LinkContext) -> None:
        """The link is gone: stop using it (streams on it end)."""

    def receive(self, message: Any, link: LinkContext) -> None:
        """One frame of ``message_types`` arrived on ``link``; never blocks."""

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """An error frame answered frame ``re`` sent on ``link``: True if it was this
        feature's frame (it then handles the refusal); never blocks."""


async def reply_or_error(re: int, kind: str, reply: Awaitable[None], send: Send) -> None:
    """Await ``reply`` (the work that sends the answer to frame ``re`` of type ``kind``); if it
    fails, send the one error frame instead: a ``PlatformError`` as itself, anything else as
    an internal error (logged here, never shown to the coordinator)."""
    try:
        await reply
    except PlatformError as exc:
        await send(ErrorMessage(id=UNSTAMPED, re=re, error=exc.to_body()))
    except Exception:
        logger.exception("request %s (%s) failed", re, kind)
        internal = PlatformError("agent internal error").to_body()
        await send(ErrorMessage(id=UNSTAMPED, re=re, error=internal))
