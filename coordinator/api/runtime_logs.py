"""Runtime log routes: a resource's container logs read through its agent, as JSON history or
as a followed, resumable server-sent-events stream (permission ``runtime-logs:read``)."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from aiohttp import web
from pydantic import Field

from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.appkeys import REGISTRY_KEY
from coordinator.db import models
from coordinator.deployments import reads
from coordinator.hub.session import AgentSession
from coordinator.logstream import RELAY_KEY
from coordinator.logstream.masking import resource_masker
from coordinator.logstream.view import LineView, write_sse
from coordinator.lookup import get_deployment, get_resource
from shared.errors import InvalidRequest, NotFound, Timeout, Unavailable
from shared.messages.logs import LogEnd
from shared.wire import WireModel

TAG = "runtime-logs"
PERMISSION: Final = "runtime-logs:read"
# The whole history request (open, read, end) must finish within this long.
HISTORY_SECONDS: Final = 30.0
_RELATIVE = re.compile(r"^(\d{1,9})([smhd])$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class RuntimeLogsQuery(WireModel):
    """Which lines: ``tailLines`` per container (history), after ``since``, after ``cursor``."""

    deployment_id: str | None = Field(default=None, max_length=40)
    service_name: str | None = Field(default=None, max_length=100)
    tail_lines: int = Field(default=100, ge=0, le=1000)
    since: str | None = Field(
        default=None, max_length=40, description="ISO 8601 time, or relative: 30s, 10m, 2h, 1d"
    )
    cursor: str | None = Field(
        default=None, max_length=2000, description="resume after this line (then at most "
        "tailLines lines follow, oldest first)",
    )  # fmt: skip


class RuntimeLogsStreamQuery(RuntimeLogsQuery):
    """The history query plus ``follow`` (default true) and ``followDeployments``."""

    follow: bool = True
    follow_deployments: bool = False


class RuntimeLogLine(WireModel):
    """One container log line; ``message`` has every secret of the resource as ``****``."""

    resource_id: str
    deployment_id: str | None
    service_name: str | None
    runtime_kind: Literal["docker-container"]
    runtime_instance_id: str
    stream: Literal["stdout", "stderr"]
    timestamp: str = Field(description="RFC 3339 with nanoseconds, UTC")
    sequence: int
    cursor: str
    message: str
    masked: bool


class RuntimeLogsResponse(WireModel):
    """Lines oldest first; ``nextCursor`` resumes after the last one."""

    resource_id: str
    deployment_id: str | None
    logs: list[RuntimeLogLine]
    next_cursor: str | None = None


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """``since`` as an aware time; raise ``InvalidRequest`` when it is neither form."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if match := _RELATIVE.match(text):
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            "since must be an ISO 8601 time or a relative age like 10m",
            details={"field": "since"},
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _target(
    call: Call, resource: models.Resource, deployment_id: str | None
) -> tuple[AgentSession, str | None]:
    """The live agent session of the server running the resource (or the deployment)."""
    if deployment_id is not None:
        deployment = await get_deployment(call.actor, deployment_id)
        if deployment.resource_id != resource.id:
            raise NotFound(f"deployment {deployment_id!r} not found for this resource")
    else:
        found = await reads.latest_of_resource(resource.id)
        if found is None:
            raise NotFound(
                "the resource has not been deployed", details={"resourceId": resource.id}
            )
        deployment = found
    return call.request.app[REGISTRY_KEY].require(deployment.server_id), deployment_id


def _open_fields(
    resource_id: str, q: RuntimeLogsQuery, cursor: str | None, follow: bool
) -> dict[str, Any]:
    """The ``LogOpen`` fields for this query (the relay adds the stream id and credit)."""
    return {
        "resource_id": resource_id,
        "deployment_id": q.deployment_id,
        "service_name": q.service_name,
        # A resumed stream continues after the cursor; a tail would cut lines out of it.
        "tail_lines": None if cursor else q.tail_lines,
        "since": parse_since(q.since),
        "cursor": cursor,
        "follow": follow,
    }


@route(
    "GET",
    "/resources/{resourceId}/runtime-logs",
    summary="Read a resource's recent container logs (history, through its agent)",
    tag=TAG,
    permission=PERMISSION,
    query=RuntimeLogsQuery,
    response=RuntimeLogsResponse,
    errors=AGENT_ERRORS,
)
async def runtime_logs(call: Call) -> RuntimeLogsResponse:
    """Without ``cursor``: the last ``tailLines`` lines (merged across replicas by time).
    With ``cursor``: up to ``tailLines`` lines after it, in stream order."""
    q = call.query(RuntimeLogsQuery)
    resource = await get_resource(call.actor, call.path["resourceId"])
    session, _ = await _target(call, resource, q.deployment_id)
    view = LineView(resource.id, q.service_name, await resource_masker(call.keyring, resource))
    fields = _open_fields(resource.id, q, q.cursor, follow=False)
    relay = call.request.app[RELAY_KEY]
    stream = await relay.open(session, fields)
    lines: list[dict[str, Any]] = []
    try:
        while q.cursor is None or len(lines) < q.tail_lines:
            item = await stream.next(HISTORY_SECONDS)
            if item is None:
                raise Timeout("the agent did not send the logs in time")
            if isinstance(item, LogEnd):
                if item.reason == "error":
                    raise Unavailable(f"the agent could not read the logs: {item.message}")
                break
            lines.extend(view.lines(item))
            await stream.grant(1)
    finally:
        await relay.release(stream)
    next_cursor = lines[-1]["cursor"] if lines else q.cursor
    if q.cursor is None:
        lines.sort(key=lambda line: line["timestamp"])  # stable: per-container order holds
        lines = lines[max(len(lines) - q.tail_lines, 0) :] if q.tail_lines else []
    else:
        lines = lines[: q.tail_lines]
        next_cursor = lines[-1]["cursor"] if lines else q.cursor
    for number, line in enumerate(lines, start=1):
        line["sequence"] = number
    deployments = {line["deploymentId"] for line in lines}
    return RuntimeLogsResponse(
        resource_id=resource.id,
        deployment_id=q.deployment_id or (deployments.pop() if len(deployments) == 1 else None),
        logs=[RuntimeLogLine.model_validate(line) for line in lines],
        next_cursor=next_cursor,
    )


@route(
    "GET",
    "/resources/{resourceId}/runtime-logs/stream",
    summary="Stream a resource's container logs as server-sent events (resumable)",
    tag=TAG,
    permission=PERMISSION,
    query=RuntimeLogsStreamQuery,
    raw_response="text/event-stream",
    events=("runtime-logs", "gap", "end"),
    errors=AGENT_ERRORS,
)
async def runtime_logs_stream(call: Call) -> web.StreamResponse:
    """SSE: ``runtime-logs`` events (id = last line's cursor), ``gap``, ``end``; see
    ``coordinator/logstream/view.py`` for the format."""
    q = call.query(RuntimeLogsStreamQuery)
    resource = await get_resource(call.actor, call.path["resourceId"])
    session, _ = await _target(call, resource, q.deployment_id)
    resume = q.cursor if q.cursor is not None else call.request.headers.get("Last-Event-ID")
    view = LineView(resource.id, q.service_name, await resource_masker(call.keyring, resource))
    fields = _open_fields(resource.id, q, resume or None, follow=q.follow)
    fields["follow_deployments"] = q.follow_deployments
    relay = call.request.app[RELAY_KEY]
    stream = await relay.open(session, fields)
    return await write_sse(call.request, relay, stream, view)
