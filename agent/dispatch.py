"""Route each coordinator frame to the feature that consumes its type; answer the link's own
requests (connectivity checks) and turn what nobody handles into an error frame."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.features import AgentFeature, LinkContext, reply_or_error
from agent.host import check_docker, check_state_dir
from agent.runtime import ContainerRuntime
from shared.errors import InvalidMessage, UnknownType, error_from_body
from shared.messages import (
    UNSTAMPED,
    AgentMessage,
    Challenge,
    ConnectivityCheck,
    ConnectivityReport,
    CoordinatorMessage,
    ErrorMessage,
    Welcome,
)

logger = logging.getLogger(__name__)

Send = Callable[[AgentMessage], Awaitable[None]]


class Dispatcher:
    """Answers each coordinator request with exactly one reply: its result or an error frame."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        state_dir: Path,
        features: list[AgentFeature] | None = None,
        link: LinkContext | None = None,
    ) -> None:
        self._runtime = runtime
        self._state_dir = state_dir
        self._link = link
        self._features: dict[str, AgentFeature] = {}
        for feature in features or []:
            for message_type in feature.message_types:
                self._features[message_type] = feature

    def deliver(self, message: CoordinatorMessage) -> bool:
        """Hand a frame to the feature that consumes its type (or, for an error frame, to the
        feature whose frame it answers); False if none does."""
        if self._link is None:
            return False
        if isinstance(message, ErrorMessage):
            if message.re is None:
                return False
            error = error_from_body(message.error)
            return any(
                feature.refused(message.re, error, self._link)
                for feature in {id(f): f for f in self._features.values()}.values()
            )
        feature = self._features.get(message.type)
        if feature is None:
            return False
        feature.receive(message, self._link)
        return True

    async def handle(self, message: CoordinatorMessage, send: Send) -> None:
        """Handle one decoded frame; errors become an error frame answering it."""
        await reply_or_error(message.id, message.type, self._handle(message, send), send)

    async def _handle(self, message: CoordinatorMessage, send: Send) -> None:
        match message:
            case ConnectivityCheck():
                checks = await asyncio.gather(
                    check_docker(self._runtime), check_state_dir(self._state_dir)
                )
                await send(ConnectivityReport(id=UNSTAMPED, re=message.id, checks=list(checks)))
            case ErrorMessage():
                # Never answer an error with an error: that could loop between the peers.
                logger.warning(
                    "coordinator reported an error (re %s): %s: %s",
                    message.re,
                    message.error.code,
                    message.error.message,
                )
            case Challenge() | Welcome():
                raise InvalidMessage(f"{message.type!r} is only valid during the handshake")
            case _:
                raise UnknownType(f"this agent does not handle {message.type!r} frames")
