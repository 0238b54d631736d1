"""The coordinator's terminal sessions (in memory): agent frames in, client channels out, credit
back to the agent once bytes reached the client, reattach with replay, idle and grace expiry."""

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from coordinator import audit
from coordinator.auth import Principal, token_is_live
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from coordinator.settings import Settings
from coordinator.terminals.ring import OutputRing
from coordinator.terminals.session import Channel, ClientEnd, TerminalSession
from coordinator.terminals.tickets import TicketBook
from coordinator.terminals.token_end import end_expired_tokens
from shared.errors import Conflict, NotFound, PlatformError, Unauthorized, Unavailable
from shared.messages import Hello
from shared.messages.terminal import (
    MAX_TERMINAL_DATA_BYTES,
    TermClose,
    TermCredit,
    TermExit,
    TerminalAgentMessage,
    TermInput,
    TermOutput,
    TermResize,
)
from shared.messages.typeset import unsolicited_types

logger = logging.getLogger(__name__)

# Output the agent may have in flight per session; with the ring this bounds coordinator memory.
CREDIT_WINDOW_BYTES: Final = 128 * 1024
# Credit goes back in batches: a frame per keystroke echo would double the frame rate.
GRANT_THRESHOLD_BYTES: Final = 16 * 1024
# Closed sessions stay visible (status "closed") this long, at most this many.
CLOSED_KEEP_SECONDS: Final = 3600.0
CLOSED_KEEP_COUNT: Final = 1000


class TerminalHub:
    """Every terminal session of this coordinator; the link listener for terminal frames."""

    def __init__(
        self, registry: Registry, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._registry = registry
        self._settings = settings
        self._clock = clock
        self.tickets = TicketBook(settings.terminal_ticket_seconds, clock)
        self._sessions: dict[str, TerminalSession] = {}
        self._tasks: asyncio.TaskGroup | None = None

    # ---- link listener ---------------------------------------------------------------------

    @property
    def message_types(self) -> frozenset[str]:
        """Unsolicited agent frames consumed here (``term_opened`` is a reply)."""
        return unsolicited_types(TerminalAgentMessage)

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """Nothing to restore: sessions do not survive their agent's link."""

    async def on_message(self, session: AgentSession, message: Any) -> None:
        """Output or exit of one of ``session``'s terminals."""
        found = self._sessions.get(message.session_id)
        if found is None or found.agent is not session or found.status == "closed":
            if isinstance(message, TermOutput):
                # A session we do not know keeps no pty alive on the agent.
                await session.send(TermClose(id=session.next_id(), session_id=message.session_id))
            return
        if isinstance(message, TermOutput):
            await self._output(found, message)
        elif isinstance(message, TermExit):
            error = None
            if message.reason == "error":
                error = Unavailable(message.message or "the terminal failed on the agent")
            await self.close(
                found,
                reason=message.reason,
                exit_code=message.exit_code,
                error=error,
                tell_agent=False,
            )

    def on_disconnected(self, session: AgentSession) -> None:
        """The agent's link ended: its sessions end with an error to their clients."""
        for found in list(self._sessions.values()):
            if found.agent is session and found.status != "closed":
                self.close_soon(
                    found,
                    reason="agent-disconnected",
                    error=Unavailable(
                        f"the agent of server {session.server_id} disconnected; "
                        "the terminal session ended",
                        details={"serverId": session.server_id},
                    ),
                )

    # ---- lifecycle -------------------------------------------------------------------------

    async def running(self) -> AsyncIterator[None]:
        """Own the sweeper and background closes for the application's lifetime."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            sweeper = tasks.create_task(self._sweep_forever())
            try:
                yield
            finally:
                sweeper.cancel()
                await self.shutdown()
                self._tasks = None

    def _spawn(self, work: Any) -> None:
        if self._tasks is None:
            work.close()
            return
        self._tasks.create_task(self._guarded(work))

    async def _guarded(self, work: Any) -> None:
        try:
            await work
        except Exception:
            logger.exception("terminal background work failed")

    async def shutdown(self) -> None:
        """End every session (the coordinator stops; sessions live in memory only)."""
        for found in list(self._sessions.values()):
            if found.status != "closed":
                await self.close(
                    found,
                    reason="coordinator-stopped",
                    error=Unavailable("the coordinator is shutting down"),
                )

    def _sweep_interval(self) -> float:
        settings = self._settings
        shortest = min(settings.terminal_grace_seconds, settings.terminal_idle_seconds)
        return max(0.2, min(5.0, shortest / 4))

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval())
            try:
                await self.expire()
            except Exception:
                logger.exception("expiring terminal sessions failed")

    # ---- sessions --------------------------------------------------------------------------

    def add(self, session: TerminalSession) -> None:
        """Track a session that is being opened (output may arrive before the reply does)."""
        self._sessions[session.session_id] = session

    async def abandon(self, session: TerminalSession) -> None:
        """Forget a session whose opening failed; hang up a pty the agent may have started."""
        self._sessions.pop(session.session_id, None)
        session.status = "closed"
        with contextlib.suppress(PlatformError):
            await session.agent.send(
                TermClose(id=session.agent.next_id(), session_id=session.session_id)
            )

    def get(self, session_id: str) -> TerminalSession | None:
        """The session, open or recently closed."""
        return self._sessions.get(session_id)

    def sessions(self) -> list[TerminalSession]:
        """Every tracked session, oldest first."""
        return sorted(self._sessions.values(), key=lambda s: s.session_id)

    def opened(self, session: TerminalSession) -> None:
        """The agent answered ``term_open``: the session waits for its first client."""
        if session.status == "opening":
            session.status = "detached"
            session.detached_since = self._clock()

    async def expire(self, organization_id: str | None = None) -> list[str]:
        """Close idle sessions, detached ones past the grace period and those of expired tokens;
        return the ids of those of ``organization_id`` (all when None)."""
        now = self._clock()
        grace = self._settings.terminal_grace_seconds
        idle = self._settings.terminal_idle_seconds
        # Sessions whose API token ran out end with it, tickets included.
        expired = [
            s.session_id
            for s in await end_expired_tokens(self)
            if organization_id in (None, s.organization_id)
        ]
        for found in list(self._sessions.values()):
            if found.status == "closed":
                if found.closed_mono is not None and now - found.closed_mono > CLOSED_KEEP_SECONDS:
                    del self._sessions[found.session_id]
                continue
            if found.status == "opening":
                continue
            detached_too_long = (
                found.status == "detached"
                and found.detached_since is not None
                and now - found.detached_since > grace
            )
            if detached_too_long or now - found.last_activity > idle:
                await self.close(found, reason="expired")
                if organization_id in (None, found.organization_id):
                    expired.append(found.session_id)
        closed = [s for s in self._sessions.values() if s.status == "closed"]
        for old in sorted(closed, key=lambda s: s.closed_mono or 0)[:-CLOSED_KEEP_COUNT]:
            del self._sessions[old.session_id]
        self.tickets.prune()
        return expired

    def close_soon(self, session: TerminalSession, *, reason: str, error: PlatformError) -> None:
        """Close from a place that must not wait (or may be cancelled): a background task."""
        self._spawn(self.close(session, reason=reason, error=error, tell_agent=False))

    async def close(
        self,
        session: TerminalSession,
        *,
        reason: str,
        exit_code: int | None = None,
        error: PlatformError | None = None,
        tell_agent: bool = True,
        actor: Principal | None = None,
        request_id: str | None = None,
    ) -> bool:
        """End ``session`` (idempotent): agent hung up, client told, audit recorded."""
        if session.status == "closed":
            return False
        session.status = "closed"
        session.exit_code = exit_code
        session.close_reason = reason
        session.closed_at = datetime.now(UTC)
        session.closed_mono = self._clock()
        # A session that ended by itself before its first client came keeps its ticket, so a
        # quick command's output and exit code can still be collected (once).
        collectable = not session.ever_attached and reason in ("exited", "error", "idle")
        session.end = ClientEnd(exit_code, error) if collectable else None
        if not collectable:
            self.tickets.revoke_session(session.session_id)
            # Closed sessions stay listed for an hour; their output need not.
            session.ring = OutputRing(0)
        if session.channel is not None:
            session.channel.queue.put_nowait(ClientEnd(exit_code, error))
        if tell_agent:
            # A link that drops makes the agent hang up all its sessions anyway.
            with contextlib.suppress(PlatformError):
                await session.agent.send(
                    TermClose(id=session.agent.next_id(), session_id=session.session_id)
                )
        duration = (session.closed_at - session.created_at).total_seconds()
        try:
            await audit.record(
                actor=actor,
                organization_id=session.organization_id,
                event_type="terminal-session.closed",
                aggregate_type="terminal-session",
                aggregate_id=session.session_id,
                payload={
                    "scope": session.scope,
                    "serverId": session.server_id,
                    "resourceId": session.resource_id,
                    "deploymentId": session.deployment_id,
                    "ownerId": session.owner_id,
                    "durationSeconds": round(duration, 3),
                    "exitCode": exit_code,
                    "reason": reason,
                },
                request_id=request_id,
            )
        except Exception:
            logger.exception("[%s] could not record the terminal close", session.session_id)
        return True

    # ---- output and credit -----------------------------------------------------------------

    async def _output(self, session: TerminalSession, message: TermOutput) -> None:
        try:
            data = base64.b64decode(message.data, validate=True)
        except (binascii.Error, ValueError):
            await self.close(session, reason="protocol-error", error=Unavailable("bad output"))
            return
        session.in_flight += len(data)
        if session.in_flight > CREDIT_WINDOW_BYTES:
            # The agent ignored flow control; refusing it keeps our memory bounded.
            await self.close(
                session, reason="protocol-error", error=Unavailable("the agent exceeded its credit")
            )
            return
        session.last_activity = self._clock()
        session.ring.append(data)
        if session.channel is not None:
            session.channel.put(data, len(data))
        else:
            # Nobody reads: the ring keeps the newest bytes, so the agent may go on.
            await self.delivered(session, len(data))

    async def delivered(self, session: TerminalSession, count: int) -> None:
        """``count`` output bytes left the coordinator: give them back to the agent (batched)."""
        session.delivered += count
        if session.delivered < GRANT_THRESHOLD_BYTES or session.status == "closed":
            return
        grant, session.delivered = session.delivered, 0
        session.in_flight -= grant
        try:
            await session.agent.send(
                TermCredit(id=session.agent.next_id(), session_id=session.session_id, bytes=grant)
            )
        except PlatformError:
            logger.debug("[%s] credit not sent: the agent is gone", session.session_id)

    # ---- clients ---------------------------------------------------------------------------

    async def find_for_attach(self, session_id: str, ticket: str) -> TerminalSession:
        """Redeem ``ticket`` for ``session_id`` and return the open session it unlocks."""
        redeemed = self.tickets.redeem(ticket, session_id)
        session = self._sessions.get(session_id)
        if session is None:
            raise NotFound(f"terminal session {session_id!r} not found")
        if session.owner_id != redeemed.owner_id:
            raise Unavailable("ticket owner mismatch")  # cannot happen: tickets are per owner
        # Checked at each use too, not only when a token is revoked: an expiry passes silently,
        # and the sweep that notices it runs every few seconds.
        for token_id in {redeemed.token_id, session.token_id} - {None}:
            if token_id is not None and not await token_is_live(token_id):
                raise Unauthorized("the API token behind this terminal ticket no longer works")
        if session.status == "closed" and not session.collectable:
            raise Conflict(f"terminal session {session_id!r} is closed")
        return session

    def attach(self, session: TerminalSession) -> Channel:
        """Make a new client the session's reader (an earlier one is told it was replaced).

        The channel starts with the ring's bytes (recent output), which release no credit.
        """
        previous = session.channel
        channel = Channel()
        replay = session.ring.snapshot()
        if replay:
            channel.put(replay, 0)
        if previous is not None:
            # Bytes queued for the old client are in the ring (replayed above): release them.
            self._release(session, previous)
            previous.queue.put_nowait(
                ClientEnd(None, Conflict("another client attached to this terminal session"))
            )
        session.ever_attached = True
        if session.status == "closed":
            # Collecting a quick command: its output, then its end, then nothing more.
            channel.queue.put_nowait(session.end or ClientEnd(session.exit_code, None))
            session.end = None
            session.ring = OutputRing(0)
            return channel
        session.channel = channel
        session.status = "active"
        session.detached_since = None
        return channel

    def detach(self, session: TerminalSession, channel: Channel) -> None:
        """The client behind ``channel`` went away; the session waits for a reattach."""
        if session.channel is not channel:
            return
        session.channel = None
        self._release(session, channel)
        if session.status != "closed":
            session.status = "detached"
            session.detached_since = self._clock()

    def _release(self, session: TerminalSession, channel: Channel) -> None:
        pending, channel.queued_credit = channel.queued_credit, 0
        channel.queued_bytes = 0
        if pending:
            self._spawn(self.delivered(session, pending))

    async def input(self, session: TerminalSession, data: bytes) -> None:
        """Forward client keystrokes (split to the frame limit)."""
        session.last_activity = self._clock()
        for start in range(0, len(data), MAX_TERMINAL_DATA_BYTES):
            chunk = data[start : start + MAX_TERMINAL_DATA_BYTES]
            await session.agent.send(
                TermInput(
                    id=session.agent.next_id(),
                    session_id=session.session_id,
                    data=base64.b64encode(chunk).decode("ascii"),
                )
            )

    async def resize(self, session: TerminalSession, rows: int, cols: int) -> None:
        """Forward the client's window size."""
        await session.agent.send(
            TermResize(
                id=session.agent.next_id(), session_id=session.session_id, rows=rows, cols=cols
            )
        )


TERMINALS_KEY = web.AppKey("terminals", TerminalHub)
