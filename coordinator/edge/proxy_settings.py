"""A server's edge proxy settings: stored, audited, pushed to its agent (now and on every
connect), and the outcome of each push or bootstrap kept for the server's ``edgeProxy``."""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Final

from pydantic.alias_generators import to_camel
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.db.edge_models import EdgeProxyState
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from coordinator.ids import new_id
from shared.errors import ErrorBody, InvalidRequest, PlatformError, error_from_body
from shared.messages.edge import EdgeConfigure, EdgeConfigured, EdgeSettings

logger = logging.getLogger(__name__)

PUSH_TIMEOUT_SECONDS: Final = 60.0


def settings_of(row: EdgeProxyState) -> EdgeSettings:
    """The stored settings as the agent receives them."""
    return EdgeSettings(
        proxy_kind="caddy",
        listen=row.listen,
        tls_listen=row.tls_listen,
        http3=row.http3,
        acme_email=row.acme_email,
    )


async def state_of(server_id: str) -> EdgeProxyState | None:
    """The server's stored edge state (None: never configured nor bootstrapped)."""
    return await EdgeProxyState.get_or_none(server_id=server_id)


async def states_of(server_ids: list[str]) -> dict[str, EdgeProxyState]:
    """The stored edge states of these servers (those never configured are missing)."""
    rows = await EdgeProxyState.filter(server_id__in=server_ids) if server_ids else []
    return {row.server_id: row for row in rows}


async def _outcome(server_id: str, attempt_id: str, error: ErrorBody | None) -> None:
    now = datetime.now(UTC)
    if error is None:
        _ = await EdgeProxyState.filter(server_id=server_id, last_attempt_id=attempt_id).update(
            status="ready", last_succeeded_at=now, last_error_code=None, last_error_message=None
        )
    else:
        _ = await EdgeProxyState.filter(server_id=server_id, last_attempt_id=attempt_id).update(
            status="failed", last_error_code=error.code, last_error_message=error.message[:1000]
        )


async def push(session: AgentSession, row: EdgeProxyState, *, bootstrap: bool) -> ErrorBody | None:
    """Send the stored settings (and a bootstrap) to the agent; record and return any error."""
    attempt_id = row.last_attempt_id or new_id("epa")
    settings = settings_of(row)  # unset parts (None) keep the agent's own
    try:
        reply = await session.request(
            lambda i: EdgeConfigure(
                id=i, attempt_id=attempt_id, settings=settings, bootstrap=bootstrap
            ),
            PUSH_TIMEOUT_SECONDS,
        )
        if not isinstance(reply, EdgeConfigured):
            raise PlatformError(f"the agent answered edge_configure with {reply.type}")
        error = reply.error if reply.status == "failed" else None
    except PlatformError as exc:
        error = exc.to_body()
    await _outcome(row.server_id, attempt_id, error)
    return error


async def _attempt(
    actor: Principal, request_id: str, server: models.Server, event: str, **changes: object
) -> EdgeProxyState:
    """Store a new attempt (and changed settings) with its audit event, in one transaction."""
    now = datetime.now(UTC)
    attempt_id = new_id("epa")
    async with in_transaction():
        row, _ = await EdgeProxyState.get_or_create(
            server_id=server.id,
            defaults={"organization_id": actor.organization_id, "updated_at": now},
        )
        for name, value in changes.items():
            setattr(row, name, value)
        row.status, row.last_attempt_id, row.last_attempt_at = "pending", attempt_id, now
        row.updated_at = now
        await row.save()
        await audit.record(
            actor=actor,
            event_type=f"server.edge-proxy-{event}",
            aggregate_type="server",
            aggregate_id=server.id,
            payload={"attemptId": attempt_id, **{to_camel(k): v for k, v in changes.items()}},
            request_id=request_id,
        )
    return row


async def configure(
    actor: Principal,
    request_id: str,
    server: models.Server,
    settings: EdgeSettings,
    registry: Registry,
) -> EdgeProxyState:
    """Store and audit the settings, then apply them now if the agent is online (else on its
    next connect). An agent that refuses them leaves ``status`` ``failed`` with its error."""
    if settings.proxy_kind != "caddy":
        raise InvalidRequest(
            "proxyKind must be caddy: Berth's agents always route through their Caddy",
            details={"problems": [{"field": "proxyKind", "message": "must be caddy"}]},
        )
    row = await _attempt(
        actor,
        request_id,
        server,
        "configured",
        listen=settings.listen,
        tls_listen=settings.tls_listen,
        http3=settings.http3,
        acme_email=settings.acme_email,
    )
    session = registry.get(server.id)
    if session is not None:
        _ = await push(session, row, bootstrap=False)
    return await EdgeProxyState.get(server_id=server.id)


async def bootstrap(
    actor: Principal, request_id: str, server: models.Server, registry: Registry
) -> EdgeProxyState:
    """Have the online agent rebuild its edge (servers, failure pages, every route) with the
    stored settings; its error, if any, is raised after being recorded."""
    session = registry.require(server.id)
    row = await _attempt(actor, request_id, server, "bootstrap-requested")
    error = await push(session, row, bootstrap=True)
    if error is not None:
        raise error_from_body(error)
    return await EdgeProxyState.get(server_id=server.id)


class EdgeSettingsPusher:
    """On every agent connect, push the server's stored edge settings (in a task of its own:
    the link's reader is not held up by Caddy)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_connected(self, session: AgentSession) -> None:
        """Start the push if the server has settings."""
        row = await state_of(session.server_id)
        if row is None:
            return
        task = asyncio.get_running_loop().create_task(self._push(session, row))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(self, session: AgentSession, row: EdgeProxyState) -> None:
        try:
            error = await push(session, row, bootstrap=False)
        except Exception:
            logger.exception("[%s] pushing the edge settings failed", session.server_id)
            return
        if error is not None:
            logger.warning(
                "[%s] the agent refused its edge settings: %s", session.server_id, error.message
            )

    def close(self) -> None:
        """Cancel pushes still running (shutdown)."""
        for task in list(self._tasks):
            task.cancel()
