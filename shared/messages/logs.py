"""Runtime log streams: the coordinator opens one per API request; the agent sends chunks under
credit-based flow control (one credit = one chunk), so a slow reader only slows its own stream."""

from datetime import datetime
from typing import Annotated, Literal

from typing_extensions import TypedDict

from shared.messages.typeset import message_types
from shared.wire import Field, WireModel

LOGS_CAPABILITY = "logs.v1"
"""Advertised by agents that serve ``log_open``."""

LogStreamName = Literal["stdout", "stderr"]
LogEndReason = Literal["history-complete", "container-exited", "no-containers", "closed", "error"]


class LogOpen(WireModel):
    """Coordinator -> agent request: start streaming a resource's container logs.

    History first (``tail_lines`` / ``since`` / ``cursor``), then live lines when ``follow``.
    ``cursor`` is a cursor the agent handed out earlier: lines up to and including it are
    skipped, so a client that resumes gets exactly what it missed (``tail_lines`` is then
    ignored; the bare cursor ``c1`` means "from the first line"). ``service_name`` is carried
    for the API's sake; containers are chosen by resource and deployment labels.
    """

    type: Literal["log_open"] = "log_open"
    id: int
    stream_id: str = Field(min_length=1, max_length=64)
    resource_id: str = Field(max_length=40)
    deployment_id: str | None = Field(default=None, max_length=40)
    service_name: str | None = Field(default=None, max_length=100)
    tail_lines: int | None = Field(default=None, ge=0, le=1000)
    since: datetime | None = None
    cursor: str | None = Field(default=None, max_length=2000)
    follow: bool = False
    follow_deployments: bool = Field(
        default=False,
        description="when following, also stream containers of later deployments of the resource",
    )
    initial_credit: int = Field(default=8, ge=1, le=64)


class LogSource(WireModel):
    """A container the stream reads (``container_id`` is the 12-character id)."""

    container_id: str = Field(max_length=80)
    deployment_id: str | None = Field(default=None, max_length=40)
    service_name: str | None = Field(default=None, max_length=100)
    running: bool = True


class LogOpened(WireModel):
    """Agent -> coordinator reply to ``log_open``: the stream exists and reads these sources."""

    type: Literal["log_opened"] = "log_opened"
    id: int
    re: int
    stream_id: str = Field(max_length=64)
    sources: list[LogSource] = Field(default_factory=list, max_length=100)


class LogLine(TypedDict):
    """One log line as the agent read it from Docker (unmasked; the coordinator masks).

    A plain mapping, not a model: a chunk carries thousands of them and building or checking
    a model per line would cost more than reading the line from Docker. Every key is a single
    word, so the Python and wire names agree. ``container`` is the 12-character id;
    ``timestamp`` is Docker's RFC 3339 time with exactly nine fraction digits
    (``2026-01-02T03:04:05.123456789Z``), text because it carries nanoseconds and then sorts
    correctly as a string; ``cursor`` resumes the stream right after this line.
    """

    container: Annotated[str, Field(max_length=80)]
    deployment: Annotated[str | None, Field(max_length=40)]
    stream: LogStreamName
    timestamp: Annotated[str, Field(max_length=40)]
    cursor: Annotated[str, Field(max_length=2000)]
    message: Annotated[str, Field(max_length=65536)]


class LogChunk(WireModel):
    """Agent -> coordinator, unsolicited: the next lines of a stream (uses one credit).

    ``dropped`` lines were lost before ``entries`` because the reader fell too far behind a
    live follow; the coordinator turns it into a gap marker for the client.
    """

    type: Literal["log_chunk"] = "log_chunk"
    id: int
    stream_id: str = Field(max_length=64)
    seq: int = Field(ge=1)
    entries: list[LogLine] = Field(default_factory=list, max_length=10000)
    dropped: int = Field(default=0, ge=0)
    history_complete: bool = Field(
        default=False, description="set on the chunk that ends the history part of the stream"
    )


class LogEnd(WireModel):
    """Agent -> coordinator, unsolicited: the stream is over (no more chunks follow)."""

    type: Literal["log_end"] = "log_end"
    id: int
    stream_id: str = Field(max_length=64)
    reason: LogEndReason
    message: str = Field(default="", max_length=1000)


class LogCredit(WireModel):
    """Coordinator -> agent: the stream may send ``chunks`` more chunks."""

    type: Literal["log_credit"] = "log_credit"
    id: int
    stream_id: str = Field(max_length=64)
    chunks: int = Field(ge=1, le=64)


class LogClose(WireModel):
    """Coordinator -> agent: stop the stream (the client went away); no reply."""

    type: Literal["log_close"] = "log_close"
    id: int
    stream_id: str = Field(max_length=64)


LogsAgentMessage = LogOpened | LogChunk | LogEnd
LogsCoordinatorMessage = LogOpen | LogCredit | LogClose
LOGS_AGENT_TYPES = message_types(LogsAgentMessage)
LOGS_COORDINATOR_TYPES = message_types(LogsCoordinatorMessage)
