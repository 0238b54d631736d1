"""Terminal session routes: open (ticket included), list, show, new ticket, close, expire."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field

from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.api.schemas import ApiRequest, NoQuery
from coordinator.appkeys import REGISTRY_KEY, SETTINGS_KEY
from coordinator.auth import Principal
from coordinator.ids import new_id
from coordinator.lookup import get_server
from coordinator.terminals import ATTACH_PATH, TERMINALS_KEY, targets
from coordinator.terminals.hub import CREDIT_WINDOW_BYTES, TerminalHub
from coordinator.terminals.session import TerminalSession
from shared.errors import Conflict, Forbidden, NotFound, Unavailable
from shared.messages.terminal import TermOpen, TermOpened
from shared.wire import WireModel

TAG = "terminal-sessions"
MANAGE = "terminal-sessions:manage"
OPEN = "terminal-sessions:open"


class ServerScope(ApiRequest):
    """A login shell on the server (needs the agent's local BERTH_AGENT_ALLOW_HOST_SHELL=1)."""

    kind: Literal["server"]
    server_id: str = Field(min_length=1, max_length=40)


class ResourceScope(ApiRequest):
    """``docker exec`` into the resource's running container (latest successful deployment)."""

    kind: Literal["resource"]
    resource_id: str = Field(min_length=1, max_length=40)
    deployment_id: str | None = Field(default=None, max_length=40)


class OpenTerminalRequest(ApiRequest):
    """Open a terminal session."""

    scope: Annotated[ServerScope | ResourceScope, Field(discriminator="kind")]
    rows: int | None = Field(default=None, ge=1, le=1000)
    cols: int | None = Field(default=None, ge=1, le=1000)
    command: list[Annotated[str, Field(min_length=1, max_length=4096)]] | None = Field(
        default=None, min_length=1, max_length=64, description="argv; default: a shell"
    )
    working_directory: str | None = Field(default=None, min_length=1, max_length=1000)


class TerminalTransport(WireModel):
    """Where and how to attach: a websocket; the ticket goes in the first text frame."""

    kind: Literal["websocket"] = "websocket"
    path: str
    subprotocol: str = "berth.terminal.v1"
    ticket: str | None = None
    ticket_expires_at: datetime | None = None


class TerminalSessionItem(WireModel):
    """One terminal session (terminal output is never part of it)."""

    session_id: str
    scope: Literal["server", "resource"]
    server_id: str
    resource_id: str | None
    deployment_id: str | None
    transport: TerminalTransport
    provider_key: str
    working_directory: str | None
    created_at: datetime
    status: Literal["active", "detached", "closed"] | None = None
    owner_id: str | None = None
    closed_at: datetime | None = None
    exit_code: int | None = None


class TerminalSessionList(WireModel):
    """``terminal-sessions.list/v1``."""

    schema_version: Literal["terminal-sessions.list/v1"] = "terminal-sessions.list/v1"
    items: list[TerminalSessionItem]


class TerminalSessionShow(WireModel):
    """``terminal-sessions.show/v1``."""

    schema_version: Literal["terminal-sessions.show/v1"] = "terminal-sessions.show/v1"
    item: TerminalSessionItem


class TerminalListQuery(ApiRequest):
    """Filters for the session list."""

    scope: Literal["server", "resource"] | None = None
    server_id: str | None = Field(default=None, max_length=40)
    resource_id: str | None = Field(default=None, max_length=40)
    deployment_id: str | None = Field(default=None, max_length=40)
    limit: int = Field(default=100, gt=0, le=500)


class TerminalClosed(WireModel):
    """Answer to a close."""

    session_id: str
    closed: Literal[True] = True
    status: Literal["closed"] = "closed"


class ExpireRequest(ApiRequest):
    """No options: idle and detached-past-grace sessions are closed now."""


class TerminalsExpired(WireModel):
    """Answer to an expire sweep."""

    expired_count: int
    session_ids: list[str]


def _hub(call: Call) -> TerminalHub:
    return call.request.app[TERMINALS_KEY]


def _item(
    session: TerminalSession, *, status: bool, ticket: str | None = None, ttl: float = 0
) -> TerminalSessionItem:
    transport = TerminalTransport(path=ATTACH_PATH.replace("{sessionId}", session.session_id))
    if ticket is not None:
        transport = transport.model_copy(
            update={
                "ticket": ticket,
                "ticket_expires_at": datetime.now(UTC) + timedelta(seconds=ttl),
            }
        )
    return TerminalSessionItem(
        session_id=session.session_id,
        scope=session.scope,
        server_id=session.server_id,
        resource_id=session.resource_id,
        deployment_id=session.deployment_id,
        transport=transport,
        provider_key=session.provider_key,
        working_directory=session.working_directory,
        created_at=session.created_at,
        status=session.public_status if status else None,
        owner_id=session.owner_id if status else None,
        closed_at=session.closed_at if status else None,
        exit_code=session.exit_code if status else None,
    )


def _visible(actor: Principal, session: TerminalSession) -> bool:
    if session.organization_id != actor.organization_id:
        return False
    return session.owner_id == actor.actor_id or actor.allows(MANAGE)


def _find(call: Call) -> TerminalSession:
    session = _hub(call).get(call.path["sessionId"])
    if session is None or not _visible(call.actor, session):
        raise NotFound(f"terminal session {call.path['sessionId']!r} not found")
    return session


def _own(call: Call) -> TerminalSession:
    session = _find(call)
    if session.owner_id != call.actor.actor_id:
        raise Forbidden("only the actor that opened a terminal session may attach to it")
    return session


@route(
    "POST",
    "/terminal-sessions",
    summary="Open a terminal session on a server or in a resource's container",
    tag=TAG,
    permission=OPEN,
    body=OpenTerminalRequest,
    response=TerminalSessionItem,
    status=201,
    errors=AGENT_ERRORS,
)
async def open_session(call: Call) -> TerminalSessionItem:
    """Open the pty on the agent now and return a single-use ticket to attach with."""
    body = call.body(OpenTerminalRequest)
    actor = call.actor
    hub = _hub(call)
    settings = call.request.app[SETTINGS_KEY]
    resource_id: str | None = None
    deployment_id: str | None = None
    if isinstance(body.scope, ServerScope):
        server_id = (await get_server(actor, body.scope.server_id)).id
    else:
        resource_id = body.scope.resource_id
        server_id, deployment_id = await targets.resource_target(
            actor, resource_id, body.scope.deployment_id
        )
    server = await get_server(actor, server_id)
    agent = call.request.app[REGISTRY_KEY].require(server_id)
    session = TerminalSession(
        session_id=new_id("term"),
        organization_id=actor.organization_id,
        owner_id=actor.actor_id,
        owner_kind=actor.kind,
        scope=body.scope.kind,
        server_id=server_id,
        resource_id=resource_id,
        deployment_id=deployment_id,
        provider_key=server.provider_key,
        agent=agent,
        working_directory=body.working_directory,
        token_id=actor.token_id,
        token_expires_at=actor.credential_expires_at,
    )
    hub.add(session)
    try:
        reply = await agent.request(
            lambda message_id: TermOpen(
                id=message_id,
                session_id=session.session_id,
                scope=session.scope,
                resource_id=resource_id,
                deployment_id=deployment_id,
                command=body.command,
                working_directory=body.working_directory,
                rows=body.rows or 24,
                cols=body.cols or 80,
                initial_credit_bytes=CREDIT_WINDOW_BYTES,
            ),
            settings.request_timeout_seconds,
        )
        if not isinstance(reply, TermOpened):
            raise Unavailable(f"the agent answered term_open with {reply.type!r}")
        await targets.record_opened(
            actor,
            call.request_id,
            session,
            container_id=reply.container_id,
            # Only the program: arguments may carry secrets (a DSN, a password).
            program=body.command[0] if body.command else None,
        )
    except BaseException:
        # The agent may have started the pty before we gave up on it (timeout, cancel).
        await hub.abandon(session)
        raise
    hub.opened(session)
    session.working_directory = reply.working_directory or body.working_directory
    ticket, ttl = hub.tickets.issue(session.session_id, actor.actor_id, actor.token_id)
    return _item(session, status=False, ticket=ticket, ttl=ttl)


@route(
    "GET",
    "/terminal-sessions",
    summary="List terminal sessions (own ones; all with terminal-sessions:manage)",
    tag=TAG,
    permission=OPEN,
    query=TerminalListQuery,
    response=TerminalSessionList,
)
async def list_sessions(call: Call) -> TerminalSessionList:
    """Open and recently closed sessions, oldest first."""
    query = call.query(TerminalListQuery)
    items: list[TerminalSessionItem] = []
    for session in _hub(call).sessions():
        if not _visible(call.actor, session):
            continue
        if query.scope and session.scope != query.scope:
            continue
        if query.server_id and session.server_id != query.server_id:
            continue
        if query.resource_id and session.resource_id != query.resource_id:
            continue
        if query.deployment_id and session.deployment_id != query.deployment_id:
            continue
        items.append(_item(session, status=True))
    return TerminalSessionList(items=items[-query.limit :])


@route(
    "GET",
    "/terminal-sessions/{sessionId}",
    summary="Show one terminal session",
    tag=TAG,
    permission=OPEN,
    query=NoQuery,
    response=TerminalSessionShow,
)
async def show_session(call: Call) -> TerminalSessionShow:
    """The session with its status (active, detached, closed)."""
    return TerminalSessionShow(item=_item(_find(call), status=True))


@route(
    "POST",
    "/terminal-sessions/{sessionId}/tickets",
    summary="Issue a fresh single-use ticket to (re)attach to an own terminal session",
    tag=TAG,
    permission=OPEN,
    body=ExpireRequest,
    response=TerminalSessionItem,
    status=201,
)
async def new_ticket(call: Call) -> TerminalSessionItem:
    """A new ticket for the owner; a closed session gets none."""
    session = _own(call)
    if session.status == "closed":
        raise Conflict(f"terminal session {session.session_id!r} is closed")
    ticket, ttl = _hub(call).tickets.issue(
        session.session_id, call.actor.actor_id, call.actor.token_id
    )
    return _item(session, status=True, ticket=ticket, ttl=ttl)


@route(
    "POST",
    "/terminal-sessions/{sessionId}/close",
    summary="Close a terminal session (its owner, or terminal-sessions:manage)",
    tag=TAG,
    permission=OPEN,
    body=ExpireRequest,
    response=TerminalClosed,
)
async def close_session(call: Call) -> TerminalClosed:
    """Hang up the pty and end the attached client; closing twice is fine."""
    session = _find(call)
    if session.owner_id != call.actor.actor_id and not call.actor.allows(MANAGE):
        raise Forbidden("only the session's owner or terminal-sessions:manage may close it")
    await _hub(call).close(
        session, reason="closed-by-api", actor=call.actor, request_id=call.request_id
    )
    return TerminalClosed(session_id=session.session_id)


@route(
    "POST",
    "/terminal-sessions/expire",
    summary="Close idle and detached-past-grace terminal sessions now",
    tag=TAG,
    permission=MANAGE,
    body=ExpireRequest,
    response=TerminalsExpired,
)
async def expire_sessions(call: Call) -> TerminalsExpired:
    """Run the expiry sweep now."""
    expired = await _hub(call).expire(call.actor.organization_id)
    return TerminalsExpired(expired_count=len(expired), session_ids=expired)
