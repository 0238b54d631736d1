"""Connection guard: a socket must send a complete request head in time, and few may be waiting.

aiohttp has no header-read timeout: a client that connects and trickles a partial request line
holds its socket (and a file descriptor) for aiohttp's keep-alive timeout, about an hour. So
every accepted connection is *unproven* until its first request head has been parsed (the
middleware below sees the request); an unproven connection is closed ``header_timeout``
seconds after it connected, and at most ``max_unproven`` may exist at once: beyond that the
oldest unproven connection is closed. Evicting the oldest (rather than refusing the newest)
keeps the service usable under a slowloris flood: a real client sends its head within
milliseconds, so it is never the oldest, while the attacker's idle sockets are.

While a request is being handled the guard steps aside: streams (SSE), websockets (agent
links, terminals) and uploads are not cut by it. Request bodies are bounded by the body
timeout where they are read (``coordinator/api/routing.py``), TLS handshakes by
``ssl_handshake_timeout``.

Later requests on a kept-alive connection get the same deadline, counted from the first byte
of their head (a connection idling between requests is left to aiohttp's keep-alive timeout),
so a client cannot send one quick request and then trickle the next head for a minute. The
guard's protocol sits in front of aiohttp's and costs one set lookup per chunk received.
"""

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware


class ConnectionGuard:
    """Tracks connections waiting for a request head: a deadline each, and a cap."""

    def __init__(self, header_timeout: float, max_unproven: int) -> None:
        self.header_timeout = header_timeout
        self.max_unproven = max_unproven
        self._unproven: OrderedDict[asyncio.Transport, asyncio.TimerHandle] = OrderedDict()
        # Kept-alive connections between requests: their next head's deadline starts with
        # its first byte (idle ones are left to aiohttp's keep-alive timeout).
        self._idle: set[asyncio.Transport] = set()
        self.timed_out = 0  # closed for not sending a request head in time
        self.evicted = 0  # closed because too many connections were waiting

    @property
    def unproven(self) -> int:
        """How many connections are waiting for a request head now."""
        return len(self._unproven)

    def protocol_factory(
        self, inner: Callable[[], asyncio.Protocol]
    ) -> Callable[[], asyncio.Protocol]:
        """Wrap aiohttp's protocol factory so every connection is watched."""

        def make() -> asyncio.Protocol:
            return _Watched(self, inner())

        return make

    def waiting(self, transport: asyncio.Transport) -> None:
        """A request head is due (new connection, or a byte after an idle spell): start its
        deadline; close the oldest waiting connection when over the cap."""
        self._idle.discard(transport)
        loop = asyncio.get_running_loop()
        self._unproven[transport] = loop.call_later(self.header_timeout, self._expire, transport)
        while len(self._unproven) > self.max_unproven:
            oldest, timer = self._unproven.popitem(last=False)
            timer.cancel()
            self.evicted += 1
            oldest.abort()

    def received(self, transport: asyncio.Transport) -> None:
        """Bytes arrived (called for every chunk, so only a set lookup when busy)."""
        if transport in self._idle:
            self.waiting(transport)

    def proven(self, transport: asyncio.Transport | None) -> None:
        """A request head arrived: no deadline while the request is handled."""
        if transport is None:
            return
        timer = self._unproven.pop(transport, None)
        if timer is not None:
            timer.cancel()

    def handled(self, transport: asyncio.Transport | None) -> None:
        """The request's handler returned: the connection may idle until its next byte."""
        if transport is not None and not transport.is_closing():
            self._idle.add(transport)

    def gone(self, transport: asyncio.Transport) -> None:
        """The connection closed."""
        self.proven(transport)
        self._idle.discard(transport)

    def _expire(self, transport: asyncio.Transport) -> None:
        if self._unproven.pop(transport, None) is None:
            return
        if not transport.is_closing():
            self.timed_out += 1
            transport.abort()

    def close_all(self) -> None:
        """Stop tracking (server shutdown): cancel every deadline."""
        for timer in self._unproven.values():
            timer.cancel()
        self._unproven.clear()
        self._idle.clear()

    def middleware(self) -> Middleware:
        """The middleware that tells the guard when a request starts and ends."""

        @web.middleware
        async def watch(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            transport = request.transport
            self.proven(transport)
            try:
                return await handler(request)
            finally:
                self.handled(transport)

        return watch


GUARD_KEY: Final = web.AppKey("connection_guard", ConnectionGuard)


class _Watched(asyncio.Protocol):
    """Sits between the transport and aiohttp's protocol, telling the guard about arrivals,
    bytes and closes; everything is passed on unchanged."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.Transport):  # stream transports (TCP, TLS) always are
            self._transport = transport
            self._guard.waiting(transport)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._transport is not None:
            self._guard.received(self._transport)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.gone(self._transport)
        self._inner.connection_lost(exc)


class GuardedSite(web.TCPSite):
    """``web.TCPSite`` whose listener creates connections through a ``ConnectionGuard``."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        guard: ConnectionGuard,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, backlog=backlog)
        self._guard = guard

    async def start(self) -> None:
        """Same as ``TCPSite.start`` with the guarded protocol factory."""
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        if server is None:
            raise RuntimeError("runner is not set up")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.protocol_factory(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
            # A TLS handshake is part of the head: the same deadline.
            ssl_handshake_timeout=self._guard.header_timeout if self._ssl_context else None,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]
        else:
            self._bound_port = self._port
