"""The edge proxy's frames: requests the agent's Caddy could not serve (agent -> coordinator)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.messages.typeset import message_types
from shared.wire import WireModel

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


EdgeAgentMessage = AccessFailureReport
"""Every edge frame the agent sends."""

EDGE_AGENT_TYPES = message_types(EdgeAgentMessage)
