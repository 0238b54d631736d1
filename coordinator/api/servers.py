"""Server routes: register, list, show, rename, deactivate, delete, join tokens, connectivity."""

from datetime import UTC, datetime

from coordinator.api.edge_proxy import edge_proxy_view
from coordinator.api.public_address import public_base_url
from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.api.schemas import (
    AgentState,
    Blocker,
    ConnectivityTestResponse,
    CountResponse,
    CreateServerRequest,
    DeactivateServerRequest,
    DeleteServerRequest,
    DeploymentRollup,
    DomainRollup,
    EdgeProxy,
    IdResponse,
    JoinTokenRequest,
    JoinTokenResponse,
    NoQuery,
    PageQuery,
    RenameServerRequest,
    ResourceRollup,
    ServerCredential,
    ServerDeleteCheckResponse,
    ServerItem,
    ServerList,
    ServerRollups,
    ServerShowResponse,
    ShowServerQuery,
)
from coordinator.appkeys import REGISTRY_KEY, ROSTER_KEY, SETTINGS_KEY
from coordinator.db import models
from coordinator.db.edge_models import EdgeProxyState
from coordinator.edge import proxy_settings
from coordinator.hub.registry import Registry
from coordinator.lookup import get_server
from coordinator.servers import connectivity, inventory
from coordinator.servers.join_tokens import JoinToken

TAG = "servers"


def _registry(call: Call) -> Registry:
    return call.request.app[REGISTRY_KEY]


def server_item(
    row: models.Server, registry: Registry, edge: EdgeProxyState | None = None
) -> ServerItem:
    """Convert a server row plus its live session (if any) and edge state into the API item."""
    session = registry.get(row.id)
    if session is not None:
        agent = AgentState(
            status="online",
            last_seen_at=session.last_seen,
            connected_at=session.connected_at,
            version=session.agent_version or row.agent_version,
            key_fingerprint=row.agent_key_fingerprint,
            enrolled_at=row.agent_enrolled_at,
            facts=row.agent_facts,
        )
    else:
        agent = AgentState(
            status="offline" if row.last_connected_at else "never-connected",
            last_seen_at=row.last_seen_at,
            connected_at=None,
            version=row.agent_version,
            key_fingerprint=row.agent_key_fingerprint,
            enrolled_at=row.agent_enrolled_at,
            facts=row.agent_facts,
        )
    return ServerItem(
        id=row.id,
        name=row.name,
        host=row.host,
        port=row.port,
        provider_key=row.provider_key,
        target_kind=row.target_kind,
        lifecycle_status="inactive" if row.lifecycle_status == "inactive" else "active",
        deactivated_at=row.deactivated_at,
        deactivation_reason=row.deactivation_reason,
        edge_proxy=edge_proxy_view(edge) if edge is not None else EdgeProxy(),
        credential=ServerCredential(
            credential_id=row.agent_key_fingerprint,
            credential_name=row.agent_key_fingerprint,
            public_key_configured=row.agent_public_key is not None,
        ),
        agent=agent,
        created_at=row.created_at,
    )


def _join_token_answer(call: Call, issued: JoinToken) -> JoinTokenResponse:
    """The join token with the command that installs and enrolls the agent."""
    settings = call.request.app[SETTINGS_KEY]
    base = public_base_url(call.request, settings)
    command = (
        f"curl -fsSL {base}/agent/v1/install.sh | sudo bash -s -- "
        f"--coordinator {base} --token {issued.token}"
    )
    return JoinTokenResponse(
        id=issued.server_id,
        join_token=issued.token,
        join_token_expires_at=issued.expires_at,
        install_command=command,
    )


def _ttl(call: Call, requested: int | None) -> int:
    return requested or call.request.app[SETTINGS_KEY].join_token_ttl_seconds


@route(
    "POST",
    "/servers",
    summary="Register a server; returns a one-time join token",
    tag=TAG,
    permission="servers:write",
    body=CreateServerRequest,
    response=JoinTokenResponse,
    status=201,
)
async def create(call: Call) -> JoinTokenResponse:
    """Register a server and mint the join token its agent enrolls with."""
    body = call.body(CreateServerRequest)
    issued = await inventory.register(
        call.actor,
        name=body.name,
        host=body.host,
        port=body.port,
        provider_key=body.provider_key,
        ttl_seconds=_ttl(call, body.join_token_ttl_seconds),
        roster=call.request.app[ROSTER_KEY],
        request_id=call.request_id,
    )
    return _join_token_answer(call, issued)


@route(
    "GET",
    "/servers",
    summary="List servers",
    tag=TAG,
    permission="servers:read",
    query=PageQuery,
    response=ServerList,
)
async def list_servers(call: Call) -> ServerList:
    """List the servers the caller may see, oldest first, with cursor pagination."""
    query = call.query(PageQuery)
    page = await inventory.page(call.actor, query.cursor, query.limit)
    registry = _registry(call)
    edges = await proxy_settings.states_of([r.id for r in page.items])
    return ServerList(
        items=[server_item(r, registry, edges.get(r.id)) for r in page.items],
        next_cursor=page.next_cursor,
    )


@route(
    "GET",
    "/servers/count",
    summary="Count servers",
    tag=TAG,
    permission="servers:read",
    query=NoQuery,
    response=CountResponse,
)
async def count(call: Call) -> CountResponse:
    """Count the servers the caller may see."""
    return CountResponse(count=await inventory.count(call.actor))


@route(
    "GET",
    "/servers/{serverId}",
    summary="Show a server with its agent link",
    tag=TAG,
    permission="servers:read",
    query=ShowServerQuery,
    response=ServerShowResponse,
)
async def show(call: Call) -> ServerShowResponse:
    """``servers.show/v1``; rollups count deployments, which arrive with the deployments API."""
    row = await get_server(call.actor, call.path["serverId"])
    rollups = None
    if call.query(ShowServerQuery).include_rollups:
        rollups = ServerRollups(
            resources=ResourceRollup(total=0, deployed_resource_ids=[]),
            deployments=DeploymentRollup(
                total=0, status_counts=[], latest_deployment_id=None, latest_deployment_status=None
            ),
            domains=DomainRollup(
                total=0,
                status_counts=[],
                latest_domain_binding_id=None,
                latest_domain_binding_status=None,
            ),
        )
    return ServerShowResponse(
        server=server_item(row, _registry(call), await proxy_settings.state_of(row.id)),
        rollups=rollups,
        generated_at=datetime.now(UTC),
    )


@route(
    "POST",
    "/servers/{serverId}/rename",
    summary="Rename a server",
    tag=TAG,
    permission="servers:write",
    body=RenameServerRequest,
    response=IdResponse,
)
async def rename(call: Call) -> IdResponse:
    """Change the display name; the id and the agent link are unaffected."""
    body = call.body(RenameServerRequest)
    row = await inventory.rename(call.actor, call.path["serverId"], body.name, call.request_id)
    return IdResponse(id=row.id)


@route(
    "POST",
    "/servers/{serverId}/deactivate",
    summary="Deactivate a server (closes its link)",
    tag=TAG,
    permission="servers:write",
    body=DeactivateServerRequest,
    response=IdResponse,
)
async def deactivate(call: Call) -> IdResponse:
    """Mark the server inactive, revoke its join tokens and close the agent link at once."""
    body = call.body(DeactivateServerRequest)
    row = await inventory.deactivate(
        call.actor, call.path["serverId"], body.reason, _registry(call), call.request_id
    )
    return IdResponse(id=row.id)


def _blockers(row: models.Server) -> list[Blocker]:
    if inventory.blocks_deletion(row):
        return [
            Blocker(
                kind="active-server",
                related_entity_id=row.id,
                related_entity_type="server",
                count=1,
            )
        ]
    return []


@route(
    "GET",
    "/servers/{serverId}/delete-check",
    summary="Preview whether a server can be deleted",
    tag=TAG,
    permission="servers:read",
    query=NoQuery,
    response=ServerDeleteCheckResponse,
)
async def delete_check(call: Call) -> ServerDeleteCheckResponse:
    """Only an inactive server can be deleted."""
    row = await get_server(call.actor, call.path["serverId"])
    blockers = _blockers(row)
    return ServerDeleteCheckResponse(
        server_id=row.id,
        lifecycle_status=row.lifecycle_status,
        eligible=not blockers,
        blockers=blockers,
        checked_at=datetime.now(UTC),
    )


@route(
    "DELETE",
    "/servers/{serverId}",
    summary="Delete an inactive server",
    tag=TAG,
    permission="servers:write",
    body=DeleteServerRequest,
    response=IdResponse,
)
async def delete(call: Call) -> IdResponse:
    """Delete after confirmation; the agent's key is forgotten with the row."""
    body = call.body(DeleteServerRequest)
    row = await inventory.delete(
        call.actor,
        call.path["serverId"],
        body.confirmation.server_id,
        registry=_registry(call),
        roster=call.request.app[ROSTER_KEY],
        request_id=call.request_id,
    )
    return IdResponse(id=row.id)


@route(
    "POST",
    "/servers/{serverId}/agent-enrollments",
    summary="Mint a new one-time join token for a server",
    tag=TAG,
    permission="servers:write",
    body=JoinTokenRequest,
    response=JoinTokenResponse,
    status=201,
)
async def agent_enrollment(call: Call) -> JoinTokenResponse:
    """Issue a fresh join token (e.g. the first one expired); the current key stays valid."""
    body = call.body(JoinTokenRequest)
    issued = await inventory.issue_join_token(
        call.actor,
        call.path["serverId"],
        _ttl(call, body.join_token_ttl_seconds),
        call.request_id,
    )
    return _join_token_answer(call, issued)


@route(
    "POST",
    "/servers/{serverId}/agent-key/rotate",
    summary="Revoke the agent key now and mint a join token to enroll a new one",
    tag=TAG,
    permission="servers:write",
    body=JoinTokenRequest,
    response=JoinTokenResponse,
)
async def rotate_agent_key(call: Call) -> JoinTokenResponse:
    """Forget the enrolled key, close the link, and return a join token for re-enrollment."""
    body = call.body(JoinTokenRequest)
    issued = await inventory.rotate_agent_key(
        call.actor,
        call.path["serverId"],
        _ttl(call, body.join_token_ttl_seconds),
        _registry(call),
        call.request_id,
    )
    return _join_token_answer(call, issued)


@route(
    "POST",
    "/servers/{serverId}/connectivity-tests",
    summary="Test the server through a real round trip to its agent",
    tag=TAG,
    permission="servers:read",
    response=ConnectivityTestResponse,
    errors=AGENT_ERRORS,
)
async def connectivity_test(call: Call) -> ConnectivityTestResponse:
    """Check the link, time a request through it, and include the agent's own local checks."""
    row = await get_server(call.actor, call.path["serverId"])
    timeout = call.request.app[SETTINGS_KEY].request_timeout_seconds
    status, checks = await connectivity.check(_registry(call), row.id, timeout)
    return ConnectivityTestResponse(
        server_id=row.id,
        name=row.name,
        host=row.host,
        port=row.port,
        provider_key=row.provider_key,
        checked_at=datetime.now(UTC),
        status=status,
        checks=checks,
    )
