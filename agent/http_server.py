"""A small HTTP/1.1 server for Caddy's calls to the agent on loopback (h11 over asyncio streams).

The agent answers two kinds of request from its own Caddy: the failure pages and on-demand
TLS's ``ask``. Both are a few header reads and a short answer, so a handler is a plain function
of a ``Request``; h11 does the protocol (framing, keep-alive, refusing what is not HTTP).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, urlsplit

import h11

logger = logging.getLogger(__name__)

_READ_BYTES: Final = 64 * 1024
# A request body is read only to be dropped; past this much the connection is closed instead.
_DRAIN_BYTES: Final = 16 * 1024 * 1024
# A connection Caddy keeps open for reuse is closed after this long without a request.
_IDLE_SECONDS: Final = 60.0


@dataclass(frozen=True)
class Request:
    """What a handler sees: the method, the path, the query and the headers (lower-case names;
    repeated ones joined with ``, ``)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Reply:
    """A handler's answer (text, sent as UTF-8)."""

    status: int
    text: str
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Reply]


class LoopbackServer:
    """Serves ``handler`` on ``host:port`` (port 0: an ephemeral one) until ``stop``."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        """The port listened on (0 before ``start``)."""
        if self._server is None or not self._server.sockets:
            return 0
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> int:
        """Listen (once); the port."""
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self._host, self._port)
        return self.port

    async def stop(self) -> None:
        """Stop listening and close the open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._connections):
            writer.close()
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_READ_BYTES)
        try:
            while await self._one_exchange(conn, reader, writer):
                conn.start_next_cycle()
        except (OSError, TimeoutError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass  # the client went away or spoke something else: nothing to answer
        except asyncio.CancelledError:
            # The agent is stopping. Ending the task normally, not cancelled: Python 3.11's
            # start_server logs "Exception in callback" for a cancelled connection task.
            pass
        finally:
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _one_exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Read one request's head and answer it; whether the connection may carry another.

        The answer goes out before the body is read: a visitor's upload to an app that is
        down still gets its failure page, whatever its size. The body is then read and dropped
        (up to ``_DRAIN_BYTES``), so the client is not reset while it is still sending."""
        try:
            event = await _next_event(conn, reader)
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await _send(conn, writer, Reply(exc.error_status_hint, f"{exc}\n"))
            return False
        if not isinstance(event, h11.Request):
            return False
        await _send(conn, writer, self._handler(_request(event)))
        return await _drain(conn, reader) and conn.our_state is h11.DONE


def _request(event: h11.Request) -> Request:
    target = urlsplit(event.target.decode("latin-1"))
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return Request(
        method=event.method.decode("latin-1"),
        path=target.path,
        query=dict(parse_qsl(target.query, keep_blank_values=True)),
        headers=headers,
    )


async def _drain(conn: h11.Connection, reader: asyncio.StreamReader) -> bool:
    """Read the rest of the request's body and drop it; whether it ended within bounds."""
    size = 0
    while True:
        event = await _next_event(conn, reader)
        if isinstance(event, h11.EndOfMessage):
            return True
        if not isinstance(event, h11.Data):
            return False
        size += len(event.data)
        if size > _DRAIN_BYTES:
            return False


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> object:
    while (event := conn.next_event()) is h11.NEED_DATA:
        async with asyncio.timeout(_IDLE_SECONDS):
            conn.receive_data(await reader.read(_READ_BYTES))
    return event


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, reply: Reply) -> None:
    body = reply.text.encode()
    headers = [
        ("Content-Type", reply.content_type),
        ("Content-Length", str(len(body))),
        *reply.headers.items(),
    ]
    writer.write(conn.send(h11.Response(status_code=reply.status, headers=headers)) or b"")
    writer.write(conn.send(h11.Data(data=body)) or b"")
    writer.write(conn.send(h11.EndOfMessage()) or b"")
    await writer.drain()
