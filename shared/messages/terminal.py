"""Terminal sessions hosted by the agent: open, bytes both ways (base64 in JSON frames), resize,
credit-based output flow control, exit and close."""

from typing import Literal

from shared.messages.typeset import message_types
from shared.wire import Field, WireModel

TERMINAL_CAPABILITY = "terminal.v1"
"""Advertised by agents that host resource terminals (``docker exec`` with a TTY)."""

TERMINAL_HOST_CAPABILITY = "terminal.host.v1"
"""Advertised only when the agent's local configuration allows host login shells."""

MAX_TERMINAL_DATA_BYTES = 64 * 1024
"""Raw bytes per ``term_input`` / ``term_output`` frame (before base64)."""


class TermOpen(WireModel):
    """Coordinator -> agent request: start a pseudo-terminal for ``session_id``."""

    type: Literal["term_open"] = "term_open"
    id: int
    session_id: str = Field(min_length=1, max_length=64)
    scope: Literal["server", "resource"]
    resource_id: str | None = Field(default=None, max_length=40)
    deployment_id: str | None = Field(default=None, max_length=40)
    command: list[str] | None = Field(default=None, max_length=64)
    working_directory: str | None = Field(default=None, max_length=1000)
    rows: int = Field(default=24, ge=1, le=1000)
    cols: int = Field(default=80, ge=1, le=1000)
    initial_credit_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)


class TermOpened(WireModel):
    """Agent -> coordinator reply to ``term_open``: the pty runs."""

    type: Literal["term_opened"] = "term_opened"
    id: int
    re: int
    session_id: str = Field(max_length=64)
    container_id: str | None = Field(default=None, max_length=80)
    command: list[str] = Field(default_factory=list, max_length=64)
    working_directory: str | None = Field(default=None, max_length=1000)


class TermInput(WireModel):
    """Coordinator -> agent: bytes typed by the client (standard base64 in ``data``)."""

    type: Literal["term_input"] = "term_input"
    id: int
    session_id: str = Field(max_length=64)
    data: str = Field(max_length=(MAX_TERMINAL_DATA_BYTES * 4) // 3 + 4)


class TermResize(WireModel):
    """Coordinator -> agent: the client's window size changed."""

    type: Literal["term_resize"] = "term_resize"
    id: int
    session_id: str = Field(max_length=64)
    rows: int = Field(ge=1, le=1000)
    cols: int = Field(ge=1, le=1000)


class TermOutput(WireModel):
    """Agent -> coordinator, unsolicited: bytes the pty produced (uses credit of their length)."""

    type: Literal["term_output"] = "term_output"
    id: int
    session_id: str = Field(max_length=64)
    seq: int = Field(ge=1)
    data: str = Field(max_length=(MAX_TERMINAL_DATA_BYTES * 4) // 3 + 4)


class TermCredit(WireModel):
    """Coordinator -> agent: the session may send ``bytes`` more output bytes."""

    type: Literal["term_credit"] = "term_credit"
    id: int
    session_id: str = Field(max_length=64)
    bytes: int = Field(ge=1, le=16 * 1024 * 1024)


class TermExit(WireModel):
    """Agent -> coordinator, unsolicited: the process ended (after its last output)."""

    type: Literal["term_exit"] = "term_exit"
    id: int
    session_id: str = Field(max_length=64)
    exit_code: int | None = None
    # exited: the process ended by itself; closed: term_close or the link went away; idle: no
    # input or output for the agent's terminal_idle_seconds; error: the pty could not be served.
    reason: Literal["exited", "closed", "idle", "error"] = "exited"
    message: str = Field(default="", max_length=1000)


class TermClose(WireModel):
    """Coordinator -> agent: end the session now (the process is hung up); no reply."""

    type: Literal["term_close"] = "term_close"
    id: int
    session_id: str = Field(max_length=64)


TerminalAgentMessage = TermOpened | TermOutput | TermExit
TerminalCoordinatorMessage = TermOpen | TermInput | TermResize | TermCredit | TermClose
TERMINAL_AGENT_TYPES = message_types(TerminalAgentMessage)
TERMINAL_COORDINATOR_TYPES = message_types(TerminalCoordinatorMessage)
