"""The seam between the agent link and the features that use it (deployments, monitoring, logs,
terminals): each feature is a listener that names the unsolicited frame types it consumes."""

from typing import Any, Protocol

from coordinator.hub.session import AgentSession
from shared.messages import Hello


class LinkListener(Protocol):
    """Told about sessions and about the unsolicited frames whose types it lists.

    ``on_message`` runs inside the session's read loop, so it sees one agent's frames in order
    and must be quick (a database write, a queue put, a notify); longer work belongs to tasks
    the listener owns. Raising ``PlatformError`` answers the frame with an error frame.
    """

    @property
    def message_types(self) -> frozenset[str]:
        """The ``type`` values of the agent frames this listener consumes."""
        ...

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """The session was authenticated and welcomed."""

    async def on_message(self, session: AgentSession, message: Any) -> None:
        """An unsolicited frame of one of ``message_types`` arrived from ``session``."""

    def on_disconnected(self, session: AgentSession) -> None:
        """The session ended (it was already removed from the registry)."""
