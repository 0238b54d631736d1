"""The seam between the agent link and the features that use it (deployments, runtime state)."""

from typing import Protocol

from coordinator.hub.session import AgentSession
from shared.errors import UnknownType
from shared.messages import DeployProgress, DeployResult, Hello, Inventory

AgentEvent = DeployProgress | DeployResult | Inventory
"""Agent frames that are not replies: the hub hands them to the listener, in arrival order."""


class LinkListener(Protocol):
    """Told about sessions and their unsolicited frames.

    ``on_message`` runs inside the session's read loop, so it sees one agent's frames in order
    and must be quick (a database write, a notify); longer work belongs to tasks the listener
    owns. Raising ``PlatformError`` answers the frame with an error frame.
    """

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """The session was authenticated and welcomed."""

    async def on_message(self, session: AgentSession, message: AgentEvent) -> None:
        """An unsolicited frame arrived from ``session``."""

    def on_disconnected(self, session: AgentSession) -> None:
        """The session ended (it was already removed from the registry)."""


class NoListener:
    """Default listener: nothing consumes agent events yet, so they are refused politely."""

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """Nothing to do."""

    async def on_message(self, session: AgentSession, message: AgentEvent) -> None:
        """Refuse: no feature on this coordinator consumes the frame."""
        raise UnknownType(f"this coordinator does not handle {message.type!r} frames")

    def on_disconnected(self, session: AgentSession) -> None:
        """Nothing to do."""
