"""Live agent sessions by server id: attach, replace, look up, disconnect."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator.hub.admission import FrameAdmission
from coordinator.hub.listener import LinkListener
from coordinator.hub.session import AgentSession
from shared.errors import Unavailable, UnknownType
from shared.messages import Hello
from shared.version import CLOSE_REPLACED

logger = logging.getLogger(__name__)


class Registry:
    """The coordinator's table of connected agents (one per server)."""

    def __init__(self) -> None:
        self._sessions: dict[str, AgentSession] = {}
        self._listeners: list[LinkListener] = []
        self._by_type: dict[str, LinkListener] = {}
        # Shared by every link's read loop: bounds agent frames handled per loop turn.
        self.admission = FrameAdmission()

    def add_listener(self, listener: LinkListener) -> None:
        """Register a feature; it gets every session event and the frame types it lists."""
        for message_type in listener.message_types:
            if message_type in self._by_type:
                raise ValueError(f"two listeners claim {message_type!r} frames")
            self._by_type[message_type] = listener
        self._listeners.append(listener)

    async def connected(self, session: AgentSession, hello: Hello) -> None:
        """Tell every listener that ``session`` is up (in registration order)."""
        for listener in self._listeners:
            await listener.on_connected(session, hello)

    def disconnected(self, session: AgentSession) -> None:
        """Tell every listener that ``session`` ended; one failing does not skip the others."""
        for listener in self._listeners:
            try:
                listener.on_disconnected(session)
            except Exception:
                logger.exception("[%s] a link listener failed on disconnect", session.server_id)

    async def route(self, session: AgentSession, message: Any) -> None:
        """Hand an unsolicited frame to the listener that consumes its type."""
        listener = self._by_type.get(message.type)
        if listener is None:
            raise UnknownType(f"this coordinator does not handle {message.type!r} frames")
        await listener.on_message(session, message)

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, server_id: str) -> AgentSession | None:
        """Return the live session for ``server_id``, if any."""
        return self._sessions.get(server_id)

    def require(self, server_id: str) -> AgentSession:
        """Return the live session for ``server_id``; 503 ``Unavailable`` when it has none."""
        session = self._sessions.get(server_id)
        if session is None:
            raise Unavailable(
                "the server's agent is not connected", details={"serverId": server_id}
            )
        return session

    async def attach(self, session: AgentSession) -> None:
        """Register ``session``; an older session for the same server is closed (replaced)."""
        old = self._sessions.get(session.server_id)
        self._sessions[session.server_id] = session
        if old is not None and old is not session:
            logger.info("[%s] newer connection replaces the previous one", session.server_id)
            await old.close(CLOSE_REPLACED, "replaced by a newer connection")

    def detach(self, session: AgentSession) -> bool:
        """Forget ``session`` if it is still the current one; return whether it was."""
        if self._sessions.get(session.server_id) is session:
            del self._sessions[session.server_id]
            return True
        return False

    async def disconnect(self, server_id: str, code: int, reason: str) -> bool:
        """Close the server's link now (revocation, deactivation); return whether one existed."""
        session = self._sessions.pop(server_id, None)
        if session is None:
            return False
        logger.info("[%s] closing agent link: %s", server_id, reason)
        await session.close(code, reason)
        session.fail_pending()
        return True

    async def close_all(self, code: int, reason: str) -> None:
        """Close every link (shutdown); agents reconnect to the next coordinator."""
        sessions = list(self._sessions.values())
        self._sessions.clear()
        await asyncio.gather(*(s.close(code, reason) for s in sessions), return_exceptions=True)

    async def close_stale(self, max_silence_seconds: float) -> int:
        """Close sessions silent for longer than ``max_silence_seconds``; return how many.

        Replaces per-connection protocol pings: one sweep over the table is far cheaper than
        10,000 ping timers, and a live agent sends a heartbeat every period anyway.
        """
        cutoff = datetime.now(UTC) - timedelta(seconds=max_silence_seconds)
        stale = [s for s in self._sessions.values() if s.last_seen < cutoff]
        for session in stale:
            logger.warning(
                "[%s] no frame for %.0f s; closing the agent link",
                session.server_id,
                max_silence_seconds,
            )
            self.detach(session)
        # 1001 "going away": a live agent treats it as transient and reconnects.
        await asyncio.gather(
            *(s.close(1001, "no heartbeat") for s in stale), return_exceptions=True
        )
        return len(stale)
