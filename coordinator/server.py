"""Run the application on a socket until told to stop: TLS, signals, graceful shutdown."""

import asyncio
import logging
import signal
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from coordinator import heap, outbound
from coordinator.app import create_app
from coordinator.connguard import GUARD_KEY, GuardedSite
from coordinator.errors import EnvelopeServer
from coordinator.settings import Settings

logger = logging.getLogger(__name__)

# Agents cut off together come back together (a healed partition, a coordinator restart): with
# aiohttp's accept queue of 128 the kernel drops their SYNs, and each lost SYN costs 1, then 3,
# then 7 s of retransmission. The kernel caps this at net.core.somaxconn (4096 by default).
LISTEN_BACKLOG = 4096


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[web.AppRunner, str]]:
    """Serve until the block exits; yields the runner and the URL actually bound."""
    app = create_app(settings)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        keepalive_timeout=settings.keepalive_seconds,
    )
    await runner.setup()
    # aiohttp's own parser errors (request line or headers too long...) are plain text unless
    # the connections come from EnvelopeServer; aiohttp offers no option to choose the class.
    if runner.server is not None:
        runner.server.__class__ = EnvelopeServer
    context = _ssl_context(settings)
    guard = app[GUARD_KEY]
    site = GuardedSite(
        runner,
        settings.host,
        settings.port,
        guard=guard,
        ssl_context=context,
        backlog=LISTEN_BACKLOG,
    )
    try:
        await site.start()
        sockets = runner.addresses
        outbound.note_bound(app, [(str(a[0]), int(a[1])) for a in sockets])
        port = sockets[0][1] if sockets else settings.port
        scheme = "https" if context else "http"
        yield runner, f"{scheme}://{settings.host}:{port}"
    finally:
        await runner.cleanup()
        guard.close_all()


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then close agent links and drain requests."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running(settings) as (_runner, url):
        logger.info("berth-coordinator listening on %s", url)
        heap.configure()
        async with asyncio.TaskGroup() as tasks:
            collector = tasks.create_task(heap.run_collector())
            await stop.wait()
            collector.cancel()
        logger.info("shutting down")
