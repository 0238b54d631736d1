"""One terminal session as the coordinator tracks it, and the channel to its attached client."""

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from coordinator.hub.session import AgentSession
from coordinator.terminals.ring import OutputRing
from shared.errors import PlatformError

Status = Literal["opening", "active", "detached", "closed"]


@dataclass(frozen=True)
class ClientEnd:
    """The session ended: what the attached client is told before its socket closes."""

    exit_code: int | None
    error: PlatformError | None


@dataclass(eq=False)
class Channel:
    """One attached client: output chunks (bytes, credit they release) or the end, in order."""

    queue: asyncio.Queue[tuple[bytes, int] | ClientEnd] = field(default_factory=asyncio.Queue)
    queued_bytes: int = 0
    queued_credit: int = 0
    ending: bool = False  # the writer took the end of the session and is closing the socket

    def put(self, data: bytes, credit: int) -> None:
        self.queue.put_nowait((data, credit))
        self.queued_bytes += len(data)
        self.queued_credit += credit


@dataclass(eq=False)
class TerminalSession:
    """One terminal session as the coordinator tracks it."""

    session_id: str
    organization_id: str
    owner_id: str
    owner_kind: str
    scope: Literal["server", "resource"]
    server_id: str
    resource_id: str | None
    deployment_id: str | None
    provider_key: str
    agent: AgentSession
    working_directory: str | None = None
    # The API token that opened the session: revoking, rotating or expiring it ends the session.
    token_id: str | None = None
    token_expires_at: datetime | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: Status = "opening"
    ring: OutputRing = field(default_factory=OutputRing)
    last_activity: float = field(default_factory=time.monotonic)
    detached_since: float | None = field(default_factory=time.monotonic)
    channel: Channel | None = None
    in_flight: int = 0  # output bytes received and not yet credited back
    delivered: int = 0  # of those, bytes already written to the client (or the ring)
    exit_code: int | None = None
    closed_at: datetime | None = None
    closed_mono: float | None = None
    ever_attached: bool = False
    end: "ClientEnd | None" = None

    @property
    def collectable(self) -> bool:
        """Ended by itself before any client attached (a quick command): the first client may
        still attach once to read its output and exit code."""
        return self.status == "closed" and not self.ever_attached and self.end is not None

    close_reason: str = ""

    @property
    def public_status(self) -> Literal["active", "detached", "closed"]:
        """``active`` with a client attached, ``detached`` without, ``closed`` once ended."""
        if self.status == "closed":
            return "closed"
        return "active" if self.status == "active" else "detached"

    def buffered_bytes(self) -> int:
        """Output bytes this session holds: the ring plus what waits for the client."""
        return len(self.ring) + (self.channel.queued_bytes if self.channel else 0)
