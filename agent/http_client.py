"""The agent's HTTP/1.1 client: h11 over asyncio streams, to a unix socket or a TCP port.

One request per connection: the engine's socket and Caddy's admin port are local, so a connect
costs less than keeping a pool honest (stale sockets, a half-read answer returned to it). h11
does the protocol (framing, chunked bodies, keep-alive rules, the engine's ``101`` hand-over);
this module only moves bytes, so no HTTP is parsed by hand. Every failure is an ``OSError``
(``HttpError`` for a peer that does not speak HTTP) or a ``TimeoutError``.
"""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import IO, Final
from urllib.parse import urlsplit

import h11

from agent.http_proxy import Proxy

_READ_BYTES: Final = 64 * 1024
_FILE_CHUNK: Final = 256 * 1024
_HEAD_BYTES: Final = 64 * 1024
_SEND_FAILURE_GRACE: Final = 1.0

Body = bytes | IO[bytes] | AsyncIterable[bytes] | None


class HttpError(OSError):
    """The peer broke the protocol (or the connection broke mid-message)."""


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: a unix socket (``unix_path``) or ``host:port``, TLS when ``tls``,
    through ``proxy`` when one is given."""

    host: str
    port: int = 80
    unix_path: str | None = None
    tls: ssl.SSLContext | None = None
    proxy: Proxy | None = None

    @classmethod
    def from_url(cls, url: str, tls: ssl.SSLContext | None = None) -> "Endpoint":
        """``http://host:port`` or ``https://host:port`` (a path in ``url`` is ignored)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        secure = parts.scheme == "https"
        context = (tls or ssl.create_default_context()) if secure else None
        return cls(parts.hostname, parts.port or (443 if secure else 80), tls=context)

    @property
    def authority(self) -> str:
        """The ``Host`` header's value."""
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def target(self, path: str) -> str:
        """The request target for ``path``: absolute-form when a proxy forwards plain HTTP."""
        if self.proxy is not None and self.tls is None:
            return f"http://{self.authority}{path}"
        return path

    async def connect(self, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A new connection (``timeout`` bounds the connect, a proxy's tunnel and the TLS
        handshake)."""
        async with asyncio.timeout(timeout):
            if self.unix_path is not None:
                return await asyncio.open_unix_connection(self.unix_path, limit=_HEAD_BYTES)
            if self.proxy is not None:
                return await self.proxy.open(self.host, self.port, self.tls, _HEAD_BYTES)
            return await asyncio.open_connection(
                self.host,
                self.port,
                ssl=self.tls,
                server_hostname=self.host if self.tls else None,
                limit=_HEAD_BYTES,
            )


def locate(
    url: str, tls: ssl.SSLContext | None = None, *, environment_proxy: bool = False
) -> tuple[Endpoint, str]:
    """Where ``url`` is: its endpoint and the request target (path and query, as written);
    ``environment_proxy``: through the proxy ``HTTPS_PROXY``/``HTTP_PROXY`` name for it."""
    parts = urlsplit(url)
    target = parts.path or "/"
    endpoint = Endpoint.from_url(url, tls)
    if environment_proxy:
        endpoint = replace(endpoint, proxy=Proxy.for_url(url))
    return endpoint, f"{target}?{parts.query}" if parts.query else target


class Response:
    """An answer whose body is read as it arrives; ``close`` ends the connection."""

    def __init__(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        reader: asyncio.StreamReader,
        head: h11.Response,
        read_timeout: float | None,
    ) -> None:
        self._conn = conn
        self._reader = reader
        self._writer = writer
        self._timeout = read_timeout
        self.status: int = head.status_code
        self.reason = head.reason.decode("latin-1")
        joined: dict[str, str] = {}
        for name, value in head.headers:
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            joined[key] = f"{joined[key]}, {text}" if key in joined else text
        self.headers: Mapping[str, str] = joined
        self._pending = b""
        self._ended = False

    async def readany(self) -> bytes:
        """The next piece of the body, of any size; ``b''`` once it has ended."""
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        while not self._ended:
            event = await _next_event(self._conn, self._reader, self._timeout)
            if isinstance(event, h11.Data):
                if event.data:
                    return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self._ended = True
                self.close()
        return b""

    async def read(self, limit: int = -1) -> bytes:
        """Up to ``limit`` bytes (at least one unless the body ended); all of it when -1."""
        if limit < 0:
            parts = [piece async for piece in self.iter_any()]
            return b"".join(parts)
        data = await self.readany()
        if len(data) > limit:
            data, self._pending = data[:limit], data[limit:]
        return data

    async def readexactly(self, size: int) -> bytes:
        """Exactly ``size`` bytes; ``IncompleteReadError`` (with what came) if the body ends."""
        data = b""
        while len(data) < size:
            more = await self.read(size - len(data))
            if not more:
                raise asyncio.IncompleteReadError(data, size)
            data += more
        return data

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body in pieces as they arrive, until it ends."""
        while data := await self.readany():
            yield data

    async def iter_chunked(self, size: int) -> AsyncIterator[bytes]:
        """The body in pieces of at most ``size`` bytes."""
        while data := await self.read(size):
            yield data

    def close(self) -> None:
        """End the connection (a body not read is dropped)."""
        self._ended = True
        self._writer.close()

    release = close


async def request(
    endpoint: Endpoint,
    method: str,
    target: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Body = None,
    connect_timeout: float = 10.0,
    read_timeout: float | None = 30.0,
) -> Response:
    """Send ``method target`` and return the answer once its head is in (any status; the body
    is the caller's to read, then ``close``). ``read_timeout`` bounds each wait for bytes
    (None: no bound, for a follow). A body may be bytes, a file (sent in chunks) or an async
    iterable (chunked unless ``headers`` give a ``Content-Length``)."""
    reader, writer = await endpoint.connect(connect_timeout)
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_HEAD_BYTES)
    try:
        await _send_head(conn, writer, endpoint, method, target, headers, body)
        sending = asyncio.create_task(_send_body(conn, writer, body))
        try:
            head = await _answer_head(conn, reader, read_timeout, sending)
        finally:
            if not sending.done():
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sending
            _failure(sending)  # retrieved: a send that failed is reported by the read
        return Response(conn, writer, reader, head, read_timeout)
    except BaseException:
        writer.close()
        raise


@dataclass(frozen=True)
class Fetched:
    """A whole answer: its status, headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")


async def fetch(
    endpoint: Endpoint,
    method: str,
    target: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Body = None,
) -> Fetched:
    """Send ``method target`` and read the whole answer, for bodies small enough to hold."""
    response = await request(endpoint, method, target, headers=headers, body=body)
    try:
        return Fetched(response.status, response.headers, await response.read())
    finally:
        response.close()


async def upgrade(
    endpoint: Endpoint,
    target: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | Response:
    """POST ``target`` asking to take the connection over (``Upgrade: tcp``, as the docker CLI
    does for an attached stdin): the raw streams once the peer answers ``101``, else its
    answer (an error, for the caller to read)."""
    reader, writer = await endpoint.connect(timeout)
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_HEAD_BYTES)
    fields = {"Connection": "Upgrade", "Upgrade": "tcp", **(headers or {})}
    try:
        await _send_head(conn, writer, endpoint, "POST", target, fields, body)
        await _send_body(conn, writer, body)
        # The head alone, up to its blank line: after a 101 every later byte is the stream's,
        # so nothing past it may be read into h11's buffer.
        async with asyncio.timeout(timeout):
            conn.receive_data(await reader.readuntil(b"\r\n\r\n"))
        event = conn.next_event()
        if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            return reader, writer
        if isinstance(event, h11.Response):
            return Response(conn, writer, reader, event, timeout)
        raise HttpError(f"no answer to the upgrade of {target}: {event!r}")
    except (h11.ProtocolError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        writer.close()
        raise HttpError(f"the answer to {target} is not HTTP: {exc}") from exc
    except BaseException:
        writer.close()
        raise


async def _send_head(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    endpoint: Endpoint,
    method: str,
    target: str,
    headers: Mapping[str, str] | None,
    body: Body,
) -> None:
    fields = dict(headers or {})
    names = {name.lower() for name in fields}
    if "host" not in names:
        fields["Host"] = endpoint.authority
    if endpoint.proxy is not None and endpoint.tls is None and endpoint.proxy.authorization:
        fields["Proxy-Authorization"] = endpoint.proxy.authorization
    if isinstance(body, bytes):
        fields["Content-Length"] = str(len(body))
    elif body is not None and "content-length" not in names:
        fields["Transfer-Encoding"] = "chunked"
    try:
        head = h11.Request(
            method=method, target=endpoint.target(target), headers=list(fields.items())
        )
        data = conn.send(head)
    except h11.LocalProtocolError as exc:
        raise ValueError(f"cannot send {method} {target}: {exc}") from exc
    writer.write(data or b"")


async def _send_body(conn: h11.Connection, writer: asyncio.StreamWriter, body: Body) -> None:
    try:
        async for piece in _pieces(body):
            writer.write(conn.send(h11.Data(data=piece)) or b"")
            await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()) or b"")
    except h11.LocalProtocolError as exc:  # more or fewer bytes than the Content-Length given
        raise HttpError(f"the body does not match its headers: {exc}") from exc
    await writer.drain()


async def _pieces(body: Body) -> AsyncIterator[bytes]:
    if body is None:
        return
    if isinstance(body, bytes):
        if body:
            yield body
    elif isinstance(body, AsyncIterable):
        async for piece in body:
            if piece:
                yield bytes(piece)
    else:
        # A file (a build context in a temporary file): read off the event loop.
        while piece := await asyncio.to_thread(body.read, _FILE_CHUNK):
            yield piece


async def _answer_head(
    conn: h11.Connection,
    reader: asyncio.StreamReader,
    timeout: float | None,
    sending: "asyncio.Task[None]",
) -> h11.Response:
    """The answer's head, read while the body is still being sent: a peer may refuse a body
    before taking all of it, and its answer says why better than the broken pipe would."""
    while True:
        event = _event(conn)
        if isinstance(event, h11.Response):
            if event.status_code < 400 and not sending.done():
                await sending
            return event
        if isinstance(event, h11.ConnectionClosed):
            failure = _failure(sending)
            raise failure or HttpError("the connection closed before an answer")
        if event is h11.NEED_DATA:
            _receive(conn, await _read_while_sending(reader, timeout, sending))


async def _read_while_sending(
    reader: asyncio.StreamReader, timeout: float | None, sending: "asyncio.Task[None]"
) -> bytes:
    """The next bytes of the answer; the send's own failure when none come after it failed
    (a body whose source broke: nobody would answer, and a follow has no read timeout)."""
    reading = asyncio.ensure_future(reader.read(_READ_BYTES))
    try:
        if not sending.done():
            await asyncio.wait({reading, sending}, timeout=timeout, return_when="FIRST_COMPLETED")
        if not reading.done():
            failure = _failure(sending)
            if failure is not None:
                # An answer the peer wrote before it stopped reading may still be on its way.
                await asyncio.wait({reading}, timeout=_SEND_FAILURE_GRACE)
                if not reading.done():
                    raise failure
            elif sending.done():
                # The body went out whole during the wait: the answer has its own bound.
                await asyncio.wait({reading}, timeout=timeout)
        if not reading.done():
            raise TimeoutError("no answer in time")
        return reading.result()
    finally:
        reading.cancel()


def _failure(sending: "asyncio.Task[None]") -> BaseException | None:
    if not sending.done() or sending.cancelled():
        return None
    return sending.exception()


def _event(conn: h11.Connection) -> object:
    try:
        return conn.next_event()
    except h11.RemoteProtocolError as exc:
        raise HttpError(f"not an HTTP answer: {exc}") from exc


def _receive(conn: h11.Connection, data: bytes) -> None:
    try:
        conn.receive_data(data)
    except RuntimeError as exc:  # bytes after the peer closed: h11 refuses them
        raise HttpError(str(exc)) from exc


async def _next_event(
    conn: h11.Connection, reader: asyncio.StreamReader, timeout: float | None
) -> object:
    while (event := _event(conn)) is h11.NEED_DATA:
        async with asyncio.timeout(timeout):
            data = await reader.read(_READ_BYTES)
        _receive(conn, data)
    return event
