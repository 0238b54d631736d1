"""The seam between the link and the agent's features (monitoring, logs, terminals): what a
feature must provide, and the handle on the current link it is given."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shared.errors import PlatformError
from shared.messages import AgentMessage, ErrorMessage, IdSequence

logger = logging.getLogger(__name__)

Send = Callable[[AgentMessage], Awaitable[None]]


@dataclass(frozen=True, eq=False)
class LinkContext:
    """One live link: send frames on it and number them. Identity tells links apart."""

    send: Send
    ids: IdSequence

    async def fail(self, re: int | None, error: PlatformError) -> None:
        """Answer frame ``re`` with an error frame (the link stays up)."""
        await self.send(ErrorMessage(id=self.ids.next(), re=re, error=error.to_body()))


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
