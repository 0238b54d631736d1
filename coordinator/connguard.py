"""Connection guard: a socket must send a complete request head in time, and few may be waiting.

aiohttp has no header-read timeout: a client that connects and trickles a partial request line
holds its socket (and a file descriptor) for aiohttp's keep-alive timeout, about an hour. So
every accepted connection is *unproven* until its first request head has been parsed (the
middleware below sees the request); an unproven connection is closed after
``header_timeout`` seconds, and at most ``max_unproven`` may exist at once: beyond that the
oldest unproven connection is closed. Evicting the oldest (rather than refusing the newest)
keeps the service usable under a slowloris flood: a real client sends its head within
milliseconds, so it is never the oldest, while the attacker's idle sockets are.

Once a request head has arrived the guard steps aside: streams (SSE), websockets (agent links,
terminals) and uploads are not cut by it. Later requests on a kept-alive connection are
bounded by aiohttp's keep-alive timeout (set by ``coordinator/server.py``), request bodies by
the body timeout where they are read (``coordinator/api/routing.py``), and TLS handshakes by
``ssl_handshake_timeout``.

The guard sees a connection only at ``connection_made``: it records the transport, passes the
connection to aiohttp's protocol and then hands the transport over to it (``set_protocol``),
so it costs nothing per byte received.
"""

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware


class ConnectionGuard:
    """Tracks unproven connections: a deadline each, and a cap on how many may wait."""

    def __init__(self, header_timeout: float, max_unproven: int) -> None:
        self.header_timeout = header_timeout
        self.max_unproven = max_unproven
        self._unproven: OrderedDict[asyncio.Transport, asyncio.TimerHandle] = OrderedDict()
        self.timed_out = 0  # closed for not sending a request head in time
        self.evicted = 0  # closed because too many connections were waiting

    @property
    def unproven(self) -> int:
        """How many connections are waiting for their first request head now."""
        return len(self._unproven)

    def protocol_factory(
        self, inner: Callable[[], asyncio.BaseProtocol]
    ) -> Callable[[], asyncio.BaseProtocol]:
        """Wrap aiohttp's protocol factory so every new connection is tracked first."""

        def make() -> asyncio.BaseProtocol:
            return _Arrival(self, inner())

        return make

    def arrived(self, transport: asyncio.Transport) -> None:
        """A connection was accepted: start its deadline; evict the oldest when over the cap."""
        loop = asyncio.get_running_loop()
        self._unproven[transport] = loop.call_later(self.header_timeout, self._expire, transport)
        while len(self._unproven) > self.max_unproven:
            oldest, timer = self._unproven.popitem(last=False)
            timer.cancel()
            self.evicted += 1
            oldest.abort()

    def proven(self, transport: asyncio.Transport | None) -> None:
        """The connection delivered a request head: it is no longer the guard's concern."""
        if transport is None:
            return
        timer = self._unproven.pop(transport, None)
        if timer is not None:
            timer.cancel()

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

    def middleware(self) -> Middleware:
        """The middleware that marks a connection proven when its request reaches the app."""

        @web.middleware
        async def prove(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            self.proven(request.transport)
            return await handler(request)

        return prove


GUARD_KEY: Final = web.AppKey("connection_guard", ConnectionGuard)


class _Arrival(asyncio.Protocol):
    """Sees only ``connection_made``, then hands the transport to aiohttp's protocol."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.BaseProtocol) -> None:
        self._guard = guard
        self._inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.Transport):  # stream transports (TCP, TLS) always are
            self._guard.arrived(transport)
        self._inner.connection_made(transport)
        transport.set_protocol(self._inner)

    def connection_lost(self, exc: Exception | None) -> None:  # only if lost before handover
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
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context)
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
