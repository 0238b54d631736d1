"""Edge proxy routes: a resource's proxy configuration preview, a server's edge settings and
bootstrap (pushed to its agent, audited)."""

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from coordinator.api.deployment_schemas import EmptyRequest
from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.api.schemas import ApiRequest, EdgeProxy
from coordinator.appkeys import REGISTRY_KEY
from coordinator.db.edge_models import EdgeProxyState
from coordinator.edge import proxy_settings
from coordinator.edge.proxy_preview import ProxyConfigurationPreview, RouteScope, preview
from coordinator.lookup import get_resource, get_server
from shared.messages.edge import EMAIL_PATTERN, LISTEN_PATTERN, EdgeSettings
from shared.wire import WireModel


class ProxyConfigurationQuery(ApiRequest):
    """Which routes to show: the latest deployment's (default), the planned ones, or a given
    deployment's; ``includeDiagnostics`` adds per-route TLS details."""

    deployment_id: str | None = Field(default=None, min_length=1, max_length=40)
    route_scope: RouteScope = "latest"
    include_diagnostics: bool = False


class EdgeProxyConfigurationRequest(ApiRequest):
    """The server's edge settings; unset fields keep the agent's own (its environment)."""

    proxy_kind: Literal["caddy", "none"] = "caddy"
    listen: str | None = Field(default=None, max_length=64, pattern=LISTEN_PATTERN)
    tls_listen: str | None = Field(default=None, max_length=64, pattern=LISTEN_PATTERN)
    http3: bool = False
    acme_email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)


class EdgeProxyConfigured(WireModel):
    """The server and its edge proxy's state after the change."""

    id: str
    edge_proxy: EdgeProxy


class EdgeProxyBootstrapped(WireModel):
    """The bootstrap attempt (its outcome is the server's ``edgeProxy``)."""

    server_id: str
    attempt_id: str


def edge_proxy_view(row: EdgeProxyState) -> EdgeProxy:
    """A server's ``edgeProxy`` block from its stored edge state."""
    return EdgeProxy(
        kind=row.proxy_kind,
        status=row.status,
        last_attempt_at=row.last_attempt_at,
        last_succeeded_at=row.last_succeeded_at,
        last_error_code=row.last_error_code,
        last_error_message=row.last_error_message,
    )


@route(
    "GET",
    "/resources/{resourceId}/proxy-configuration",
    summary="Preview a resource's edge routes and compare them with what its server's Caddy holds",
    tag="resources",
    permission="resources:read",
    query=ProxyConfigurationQuery,
    response=ProxyConfigurationPreview,
)
async def proxy_configuration(call: Call) -> ProxyConfigurationPreview:
    """Routes, TLS modes, applied status, Caddy's JSON and a stale flag (agent offline:
    status ``unknown`` with a warning, not an error)."""
    query = call.query(ProxyConfigurationQuery)
    resource = await get_resource(call.actor, call.path["resourceId"])
    return await preview(
        call.actor,
        resource,
        call.request.app[REGISTRY_KEY],
        route_scope=query.route_scope,
        deployment_id=query.deployment_id,
        include_diagnostics=query.include_diagnostics,
        now=datetime.now(UTC),
    )


@route(
    "POST",
    "/servers/{serverId}/edge-proxy/configuration",
    summary="Set a server's edge listen addresses, HTTP/3 and ACME account email",
    tag="servers",
    permission="servers:write",
    body=EdgeProxyConfigurationRequest,
    response=EdgeProxyConfigured,
    events=("server.edge-proxy-configured",),
)
async def configure(call: Call) -> EdgeProxyConfigured:
    """Stored and audited, applied now if the agent is online, else when it next connects."""
    body = call.body(EdgeProxyConfigurationRequest)
    server = await get_server(call.actor, call.path["serverId"])
    row = await proxy_settings.configure(
        call.actor,
        call.request_id,
        server,
        EdgeSettings.model_validate(body.model_dump(by_alias=False)),
        call.request.app[REGISTRY_KEY],
    )
    return EdgeProxyConfigured(id=server.id, edge_proxy=edge_proxy_view(row))


@route(
    "POST",
    "/servers/{serverId}/edge-proxy/bootstrap",
    summary="Rebuild a server's edge: Caddy servers, failure pages and every route",
    tag="servers",
    permission="servers:write",
    body=EmptyRequest,
    response=EdgeProxyBootstrapped,
    errors=AGENT_ERRORS,
    events=("server.edge-proxy-bootstrap-requested",),
)
async def bootstrap(call: Call) -> EdgeProxyBootstrapped:
    """503 when the agent is offline; the agent's own error when its Caddy refuses."""
    _ = call.body(EmptyRequest)
    server = await get_server(call.actor, call.path["serverId"])
    row = await proxy_settings.bootstrap(
        call.actor, call.request_id, server, call.request.app[REGISTRY_KEY]
    )
    return EdgeProxyBootstrapped(server_id=server.id, attempt_id=row.last_attempt_id or "")
