"""The edge proxy's frames: access failures (agent -> coordinator), edge settings pushed to the
agent, and the routes its Caddy holds for a resource (read back on request)."""

from datetime import datetime
from typing import Any, Literal

from shared.errors import ErrorBody
from shared.messages.typeset import message_types
from shared.wire import Field, WireModel

EDGE_CAPABILITY = "edge.v1"
"""Advertised in ``hello.capabilities`` by agents that report access failures."""

MAX_FAILURES_PER_REPORT = 100

AccessFailureCode = Literal[
    "resource_access_route_not_found",
    "resource_access_resource_stopped",
    "resource_access_upstream_unavailable",
    "resource_access_upstream_timeout",
    "resource_access_edge_error",
]
"""Why the edge could not serve a request (snake_case, as Appaloft spells access-failure codes)."""


class AccessFailure(WireModel):
    """One request the edge answered with an error page instead of the resource.

    Everything but ``request_id`` and ``code`` comes from the visitor's request or the proxy's
    error text, so it is bounded here and never trusted as markup.
    """

    request_id: str = Field(pattern=r"^[A-Za-z0-9-]{8,64}$")
    observed_at: datetime
    code: AccessFailureCode
    http_status: int = Field(ge=400, le=599)
    hostname: str = Field(max_length=255)
    path: str = Field(max_length=2048)
    method: str = Field(max_length=16)
    scheme: Literal["http", "https"] = "http"
    resource_id: str | None = Field(default=None, max_length=64)
    domain_binding_id: str | None = Field(default=None, max_length=64)
    route_id: str | None = Field(default=None, max_length=160)
    cause: str = Field(default="", max_length=500, description="the proxy's own error text")


class AccessFailureReport(WireModel):
    """Agent -> coordinator, unsolicited: access failures since the last report (best effort:
    a report lost with its link is not resent; the visitor's page never depended on it)."""

    type: Literal["access_failures"] = "access_failures"
    id: int
    failures: list[AccessFailure] = Field(min_length=1, max_length=MAX_FAILURES_PER_REPORT)


# No braces anywhere: in Caddy's JSON `{...}` would be a placeholder.
EMAIL_PATTERN = r"^[^@\s{}]+@[^@\s{}]+$"
# A Caddy listen address: ``:80``, ``0.0.0.0:80``, ``[::]:443``, ``127.0.0.1:7480``.
LISTEN_PATTERN = r"^(\[[0-9A-Fa-f:.]+\]|[0-9.]*|[A-Za-z0-9.-]*):[0-9]{1,5}$"


class EdgeSettings(WireModel):
    """How the server's edge proxy listens and obtains certificates (set through the API)."""

    proxy_kind: Literal["caddy", "none"] = "caddy"
    listen: str | None = Field(default=None, max_length=64, pattern=LISTEN_PATTERN)
    tls_listen: str | None = Field(default=None, max_length=64, pattern=LISTEN_PATTERN)
    http3: bool = False
    acme_email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)


class EdgeConfigure(WireModel):
    """Coordinator -> agent: apply ``settings`` (None: keep the agent's own) and, with
    ``bootstrap``, (re)create the edge's servers, failure pages and every route."""

    type: Literal["edge_configure"] = "edge_configure"
    id: int
    attempt_id: str = Field(max_length=40)
    settings: EdgeSettings | None = None
    bootstrap: bool = False


class EdgeConfigured(WireModel):
    """Agent -> coordinator: the outcome of ``edge_configure`` ``re``."""

    type: Literal["edge_configured"] = "edge_configured"
    id: int
    re: int
    attempt_id: str = Field(max_length=40)
    status: Literal["succeeded", "failed"]
    error: ErrorBody | None = None
    completed_at: datetime


class EdgeInspect(WireModel):
    """Coordinator -> agent: read back the routes Caddy holds for ``resource_id``."""

    type: Literal["edge_inspect"] = "edge_inspect"
    id: int
    resource_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")


class AppliedRoute(WireModel):
    """One route as Caddy holds it: on which server, and its JSON."""

    server: Literal["http", "https"]
    route_id: str = Field(max_length=160)
    config: dict[str, Any]


class EdgeInspection(WireModel):
    """Agent -> coordinator: the answer to ``edge_inspect`` ``re``; ``error`` when Caddy could
    not be read (then ``routes`` is empty)."""

    type: Literal["edge_inspection"] = "edge_inspection"
    id: int
    re: int
    resource_id: str
    observed_at: datetime
    listen: str
    tls_listen: str | None = None
    routes: list[AppliedRoute] = Field(default_factory=list, max_length=500)
    error: ErrorBody | None = None


EdgeAgentMessage = AccessFailureReport | EdgeConfigured | EdgeInspection
"""Every edge frame the agent sends."""

EdgeCoordinatorMessage = EdgeConfigure | EdgeInspect
"""Every edge frame the coordinator sends."""

EDGE_AGENT_TYPES = message_types(EdgeAgentMessage)
EDGE_COORDINATOR_TYPES = message_types(EdgeCoordinatorMessage)
