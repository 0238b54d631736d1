"""Certificates: facts and failed attempts the agents report, imports, and their API rules."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import web

from coordinator.appkeys import REGISTRY_KEY, SETTINGS_KEY
from coordinator.certificates.ingest import apply_report
from coordinator.domains.dns_check import Resolver
from coordinator.hub.session import AgentSession
from shared.messages import Hello
from shared.messages.certificates import CertificateReport

logger = logging.getLogger(__name__)

_QUEUE_BOUND = 1000


class CertificateListener:
    """Takes ``certificate_report`` frames; a worker applies them in arrival order.

    Applying one may look a name up in DNS (to tell "DNS points elsewhere" from "port closed"),
    which must not hold up the link's read loop.
    """

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver
        self._queue: asyncio.Queue[tuple[str, CertificateReport]] = asyncio.Queue(_QUEUE_BOUND)

    @property
    def message_types(self) -> frozenset[str]:
        """Only the report."""
        return frozenset({"certificate_report"})

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """The agent sends its picture on its own when the link comes up."""

    async def on_message(self, session: AgentSession, message: Any) -> None:
        """Queue the report (a full queue drops it: the next report carries the same state)."""
        if isinstance(message, CertificateReport) and not self._queue.full():
            self._queue.put_nowait((session.server_id, message))

    def on_disconnected(self, session: AgentSession) -> None:
        """Nothing is held per session."""

    async def run(self) -> None:
        """Apply queued reports until cancelled."""
        while True:
            server_id, report = await self._queue.get()
            try:
                await apply_report(server_id, report, self._resolver)
            except Exception:
                logger.exception("storing a certificate report from %s failed", server_id)


CERTIFICATES_KEY: Final = web.AppKey("certificates", CertificateListener)


async def _worker_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[CERTIFICATES_KEY].run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def install(app: web.Application) -> None:
    """Register the report listener and its worker."""
    listener = CertificateListener(Resolver(app[SETTINGS_KEY].dns_resolver))
    app[CERTIFICATES_KEY] = listener
    app[REGISTRY_KEY].add_listener(listener)
    app.cleanup_ctx.append(_worker_ctx)
