"""The agent websocket endpoint: protocol check, challenge-response handshake, read loop.

This module is the websocket transport's one conversion point: every ``PlatformError`` raised
while handling a frame becomes an error frame on the same connection, which stays open.
"""

import asyncio
import logging
import secrets
from datetime import UTC, datetime

from aiohttp import WSMsgType, web

from coordinator.appkeys import REGISTRY_KEY, SETTINGS_KEY
from coordinator.db import models
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from coordinator.origin import require_own_origin
from shared.crypto import verify_challenge
from shared.errors import InvalidMessage, PlatformError, UnsupportedProtocol
from shared.keepalive import DEFAULT_KEEPALIVE, apply_keepalive
from shared.messages import (
    AgentMessage,
    Challenge,
    ErrorMessage,
    Heartbeat,
    Hello,
    IdSequence,
    Welcome,
    decode_agent_message,
)
from shared.version import (
    CLOSE_PROTOCOL_ERROR,
    CLOSE_UNAUTHORIZED,
    HANDSHAKE_TIMEOUT_SECONDS,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
)
from shared.wire import dump_json

logger = logging.getLogger(__name__)


def _offered_protocols(request: web.Request) -> list[str]:
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


async def _refuse(ws: web.WebSocketResponse, code: int, reason: str, peer: str) -> None:
    logger.warning("agent handshake from %s refused: %s", peer, reason)
    await ws.close(code=code, message=reason.encode("utf-8")[:120])


async def _authenticate(hello: Hello, nonce: str) -> str | None:
    """Return why ``hello`` is refused, or None when its signature and server check out."""
    server = await models.Server.get_or_none(id=hello.server_id)
    if server is None or not server.agent_public_key:
        return "agent key not recognised for this server"
    if not verify_challenge(server.agent_public_key, nonce, hello.server_id, hello.signature):
        return "agent key not recognised for this server"
    if server.lifecycle_status != "active":
        return "server is deactivated"
    return None


async def agent_connect(request: web.Request) -> web.StreamResponse:
    """Handle ``GET /agent/v1/connect``: one persistent link per agent."""
    settings = request.app[SETTINGS_KEY]
    registry = request.app[REGISTRY_KEY]
    require_own_origin(request)  # agents send no Origin; a browser page from elsewhere does
    offered = _offered_protocols(request)
    if PROTOCOL_VERSION not in offered:
        # Refused before the upgrade, so the agent sees an HTTP 426 and treats it as fatal.
        raise UnsupportedProtocol(
            f"this coordinator speaks {PROTOCOL_VERSION}; the agent offered "
            f"{', '.join(offered) or 'no subprotocol'}",
            details={"supported": [PROTOCOL_VERSION], "offered": offered},
        )
    ws = web.WebSocketResponse(
        protocols=(PROTOCOL_VERSION,),
        heartbeat=settings.ws_ping_seconds or None,
        max_msg_size=MAX_FRAME_BYTES,
        compress=False,  # deflate costs ~33 KB per connection; frames are small JSON
    )
    await ws.prepare(request)
    # The kernel notices a silent partition (no FIN, no RST) at no Python cost per idle link;
    # behind a proxy this socket faces the proxy, which must do the same (see the README).
    if request.transport is not None:
        apply_keepalive(request.transport.get_extra_info("socket"), DEFAULT_KEEPALIVE)
    peer = request.remote or "?"
    ids = IdSequence()
    nonce = secrets.token_urlsafe(32)
    await ws.send_str(
        dump_json(Challenge(id=ids.next(), nonce=nonce, server_time=datetime.now(UTC)))
    )
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_SECONDS):
            first = await ws.receive()
    except TimeoutError:
        await _refuse(ws, CLOSE_PROTOCOL_ERROR, "no hello within the handshake timeout", peer)
        return ws
    if first.type != WSMsgType.TEXT:
        await _refuse(ws, CLOSE_PROTOCOL_ERROR, "expected a hello text frame", peer)
        return ws
    try:
        hello = decode_agent_message(first.data)
    except PlatformError as exc:
        await _refuse(ws, CLOSE_PROTOCOL_ERROR, f"bad hello: {exc.message}", peer)
        return ws
    if not isinstance(hello, Hello):
        await _refuse(ws, CLOSE_PROTOCOL_ERROR, "the first frame must be a hello", peer)
        return ws
    refusal = await _authenticate(hello, nonce)
    if refusal is not None:
        await _refuse(ws, CLOSE_UNAUTHORIZED, refusal, peer)
        return ws

    session = AgentSession(ws, hello.server_id, ids=ids)
    session.agent_version = hello.agent_version
    session.capabilities = frozenset(hello.capabilities)
    session.guard.accept(hello.id)
    await registry.attach(session)
    try:
        # Re-check after attaching: a deactivation or key rotation that landed between the
        # signature check and the attach found no session to close, so it is caught here.
        refusal = await _authenticate(hello, nonce)
        if refusal is not None:
            await _refuse(ws, CLOSE_UNAUTHORIZED, refusal, peer)
            return ws
        await models.Server.filter(id=hello.server_id).update(
            agent_version=hello.agent_version,
            agent_facts=hello.facts.model_dump(mode="json"),
            last_connected_at=session.connected_at,
            last_seen_at=session.connected_at,
        )
        await session.send(
            Welcome(
                id=session.next_id(),
                re=hello.id,
                server_id=hello.server_id,
                heartbeat_seconds=settings.agent_heartbeat_seconds,
                max_frame_bytes=MAX_FRAME_BYTES,
            )
        )
        logger.info("[%s] agent %s online from %s", hello.server_id, hello.agent_version, peer)
        await registry.connected(session, hello)
        await _read_loop(session, registry)
    finally:
        registry.detach(session)
        session.fail_pending()
        registry.disconnected(session)
        await models.Server.filter(id=hello.server_id).update(last_seen_at=session.last_seen)
        logger.info("[%s] agent link closed (code %s)", hello.server_id, ws.close_code)
    return ws


async def _read_loop(session: AgentSession, registry: Registry) -> None:
    async for frame in session.ws:
        if frame.type == WSMsgType.TEXT:
            session.touch()
            await registry.admission.admit()
            await _handle_text(session, frame.data, registry)
        elif frame.type == WSMsgType.BINARY:
            session.touch()
            await session.send_error(InvalidMessage("binary frames are not part of berth.v1"), None)
        elif frame.type == WSMsgType.ERROR:
            logger.warning("[%s] agent link error: %s", session.server_id, session.ws.exception())
            break
        # Not kept while waiting for the next frame (seconds per agent): with thousands of
        # agents that is thousands of tracked tuples for the collector and their text in RSS.
        del frame


async def _handle_text(session: AgentSession, data: str, registry: Registry) -> None:
    """Decode and dispatch one text frame; a bad frame is answered with an error frame.

    A function of its own so the decoded message dies when it returns: as a local of the read
    loop it stayed alive until the agent's next frame, and with thousands of agents that kept
    a second of decoded samples around for the garbage collector to walk (pauses of 100 ms).
    """
    re: int | None = None
    try:
        message = decode_agent_message(data)
        re = message.id
        session.guard.accept(message.id)
        await _dispatch(session, message, registry)
    except PlatformError as exc:
        detail_re = exc.details.get("re")
        await session.send_error(exc, detail_re if isinstance(detail_re, int) else re)


async def _dispatch(session: AgentSession, message: AgentMessage, registry: Registry) -> None:
    if isinstance(message, Heartbeat):
        return  # touch() already refreshed lastSeenAt
    if isinstance(message, Hello):
        raise InvalidMessage("already authenticated; hello is only valid as the first frame")
    if "re" not in type(message).model_fields:
        # Frames without ``re`` are events or stream data: the feature that owns the type.
        await registry.route(session, message)
        return
    # Frames with ``re`` answer one of our requests (or are errors about one of our frames).
    re = getattr(message, "re", None)
    if not session.resolve(re, message) and isinstance(message, ErrorMessage):
        logger.warning("[%s] agent reported: %s", session.server_id, message.error.message)
