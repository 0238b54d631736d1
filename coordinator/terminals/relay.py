"""The client side of a terminal: ``GET /terminal-sessions/{sessionId}/attach`` websocket.

The first text frame must be ``{"type":"auth","ticket":...}`` (a ticket in the URL would end up in
proxy logs). Then binary frames carry raw bytes both ways and text frames carry JSON control:
``resize`` from the client; ``ready``, ``exit`` and ``error`` from the coordinator.
"""

import asyncio
import logging
from typing import Final

import orjson
from aiohttp import WSMsgType, web

from coordinator.errors import HTTP_STATUS
from coordinator.origin import require_own_origin
from coordinator.terminals.hub import TERMINALS_KEY, TerminalHub
from coordinator.terminals.session import Channel, ClientEnd, TerminalSession
from shared.errors import InvalidRequest, PlatformError, Unauthorized

logger = logging.getLogger(__name__)

SUBPROTOCOL: Final = "berth.terminal.v1"
AUTH_TIMEOUT_SECONDS: Final = 10.0
MAX_CLIENT_FRAME_BYTES: Final = 256 * 1024
CLOSE_WAIT_SECONDS: Final = 5.0
CLOSE_NORMAL: Final = 1000


def close_code(error: PlatformError) -> int:
    """A private-range close code that mirrors the HTTP status (4401, 4403, 4404, 4409, 4503)."""
    return 4000 + HTTP_STATUS.get(error.code, 500)


async def _send_error(ws: web.WebSocketResponse, error: PlatformError) -> None:
    body = error.to_body().model_dump(mode="json", by_alias=True)
    try:
        await ws.send_str(orjson.dumps({"type": "error", "error": body}).decode())
        await ws.close(code=close_code(error), message=error.message.encode()[:120])
    except ConnectionError:
        pass


async def _authenticate(
    ws: web.WebSocketResponse, hub: TerminalHub, session_id: str
) -> TerminalSession:
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_SECONDS):
            first = await ws.receive()
    except TimeoutError:
        raise Unauthorized("no auth frame within 10 s") from None
    if first.type != WSMsgType.TEXT:
        raise Unauthorized('the first frame must be {"type":"auth","ticket":"..."}')
    try:
        auth = orjson.loads(first.data)
    except orjson.JSONDecodeError:
        auth = None
    if not isinstance(auth, dict) or auth.get("type") != "auth":
        raise Unauthorized('the first frame must be {"type":"auth","ticket":"..."}')
    ticket = auth.get("ticket")
    if not isinstance(ticket, str) or not ticket or len(ticket) > 200:
        raise Unauthorized("the auth frame carries no ticket")
    return await hub.find_for_attach(session_id, ticket)


async def attach(request: web.Request) -> web.StreamResponse:
    """Relay one client to its terminal session until either side ends."""
    hub = request.app[TERMINALS_KEY]
    session_id = request.match_info["sessionId"]
    # Refused with a 403 before the upgrade: a page from another site never gets a socket.
    require_own_origin(request)
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,), heartbeat=30.0, max_msg_size=MAX_CLIENT_FRAME_BYTES
    )
    await ws.prepare(request)
    try:
        session = await _authenticate(ws, hub, session_id)
    except PlatformError as exc:
        await _send_error(ws, exc)
        return ws
    channel = hub.attach(session)
    try:
        await ws.send_str(
            orjson.dumps(
                {"type": "ready", "sessionId": session.session_id, "scope": session.scope}
            ).decode()
        )
        reader = asyncio.create_task(_client_reader(ws, hub, session))
        writer = asyncio.create_task(_client_writer(ws, hub, session, channel, reader))
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if channel.ending:
                # The writer is sending the last frame and the close: let it finish that.
                await asyncio.wait({writer}, timeout=CLOSE_WAIT_SECONDS)
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
    finally:
        hub.detach(session, channel)
    return ws


async def _client_writer(
    ws: web.WebSocketResponse,
    hub: TerminalHub,
    session: TerminalSession,
    channel: Channel,
    reader: asyncio.Task[None],
) -> None:
    """Output to the client; credit is released only after the bytes were written."""
    while True:
        item = await channel.queue.get()
        if isinstance(item, ClientEnd):
            channel.ending = True
            # Closing while another task waits in receive() makes aiohttp drop the socket
            # without the client's close reply; stop the reader first for a clean close code.
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            if item.error is not None:
                await _send_error(ws, item.error)
            else:
                end = {"type": "exit", "exitCode": item.exit_code}
                await ws.send_str(orjson.dumps(end).decode())
                await ws.close(code=CLOSE_NORMAL, message=b"session ended")
            return
        data, credit = item
        # send_bytes waits while the transport's buffer is above its high-water mark, so a
        # slow client holds the credit back and the agent stops reading the pty.
        await ws.send_bytes(data)
        channel.queued_bytes -= len(data)
        channel.queued_credit -= credit
        if credit:
            await hub.delivered(session, credit)


async def _client_reader(
    ws: web.WebSocketResponse, hub: TerminalHub, session: TerminalSession
) -> None:
    """Keystrokes and control frames from the client, in order."""
    async for frame in ws:
        if session.status == "closed":
            break
        try:
            if frame.type == WSMsgType.BINARY:
                await hub.input(session, frame.data)
            elif frame.type == WSMsgType.TEXT:
                await _control(hub, session, frame.data)
            elif frame.type == WSMsgType.ERROR:
                break
        except InvalidRequest as exc:
            await _send_error(ws, exc)
            return
        except PlatformError as exc:
            # The agent is gone or stalled: the session cannot continue.
            hub.close_soon(session, reason="agent-unavailable", error=exc)
            return


async def _control(hub: TerminalHub, session: TerminalSession, raw: str) -> None:
    try:
        control = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("control frames are JSON objects") from exc
    if not isinstance(control, dict):
        raise InvalidRequest("control frames are JSON objects")
    kind = control.get("type")
    if kind == "resize":
        rows, cols = control.get("rows"), control.get("cols")
        if not (isinstance(rows, int) and isinstance(cols, int)) or not (
            1 <= rows <= 1000 and 1 <= cols <= 1000
        ):
            raise InvalidRequest("resize needs integer rows and cols between 1 and 1000")
        await hub.resize(session, rows, cols)
    elif kind == "ping":
        return
    else:
        raise InvalidRequest(f"unknown control frame type {kind!r}")
