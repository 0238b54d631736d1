"""Run the application on a socket until told to stop: TLS, signals, graceful shutdown."""

import asyncio
import logging
import signal
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from coordinator import heap
from coordinator.app import create_app
from coordinator.errors import EnvelopeServer
from coordinator.settings import Settings

logger = logging.getLogger(__name__)


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
        app, handle_signals=False, shutdown_timeout=settings.shutdown_timeout_seconds
    )
    await runner.setup()
    # aiohttp's own parser errors (request line or headers too long...) are plain text unless
    # the connections come from EnvelopeServer; aiohttp offers no option to choose the class.
    if runner.server is not None:
        runner.server.__class__ = EnvelopeServer
    context = _ssl_context(settings)
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=context)
    try:
        await site.start()
        sockets = runner.addresses
        port = sockets[0][1] if sockets else settings.port
        scheme = "https" if context else "http"
        yield runner, f"{scheme}://{settings.host}:{port}"
    finally:
        await runner.cleanup()


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
