"""The edge feature: failure pages and their reports, edge settings, route read-back."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from agent.access_failures import AccessFailures
from agent.edge import CaddyEdge
from agent.features import LinkContext
from shared.errors import PlatformError
from shared.messages import UNSTAMPED
from shared.messages.edge import (
    EDGE_CAPABILITY,
    EDGE_COORDINATOR_TYPES,
    MAX_FAILURES_PER_REPORT,
    AccessFailureReport,
    AppliedRoute,
    EdgeConfigure,
    EdgeConfigured,
    EdgeInspect,
    EdgeInspection,
)

logger = logging.getLogger(__name__)

REPORT_SECONDS: Final = 1.0
_INSTALL_RETRY_MAX_SECONDS: Final = 30.0


class EdgeFeature:
    """Owns the failure pages for the daemon's life; reports failures on whichever link is up."""

    def __init__(
        self,
        edge: CaddyEdge,
        restore_routes: Callable[[], Awaitable[None]] | None = None,
        pages: AccessFailures | None = None,
    ) -> None:
        self._edge = edge
        self._restore_routes = restore_routes
        self.pages = pages or AccessFailures()
        self.pages.host_binding = edge.host_binding
        self._link: LinkContext | None = None
        self._requests: set[asyncio.Task[None]] = set()
        # One edge change at a time: a configure must not interleave with a bootstrap.
        self._changing = asyncio.Lock()

    @property
    def message_types(self) -> frozenset[str]:
        """``edge_configure`` and ``edge_inspect``."""
        return EDGE_COORDINATOR_TYPES

    @property
    def capabilities(self) -> list[str]:
        """``edge.v1``."""
        return [EDGE_CAPABILITY]

    async def run(self) -> None:
        """Serve the pages, put them in Caddy (retrying while it is down), then report."""
        dial = await self.pages.start()
        try:
            delay = 1.0
            while True:
                try:
                    await self._edge.install_failure_pages(dial)
                    break
                except PlatformError as exc:
                    # Caddy not up yet (or not used by this server): said once, then quietly
                    # retried; the first route the agent adds installs them as well.
                    level = logging.WARNING if delay == 1.0 else logging.DEBUG
                    logger.log(level, "cannot install the failure pages in Caddy: %s", exc.message)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _INSTALL_RETRY_MAX_SECONDS)
            while True:
                await asyncio.sleep(REPORT_SECONDS)
                await self._report()
        finally:
            for task in list(self._requests):
                task.cancel()
            await self.pages.stop()
            await self._edge.close()

    async def _report(self) -> None:
        link = self._link
        if link is None:
            return
        while failures := self.pages.take(MAX_FAILURES_PER_REPORT):
            try:
                await link.send(AccessFailureReport(id=UNSTAMPED, failures=failures))
            except Exception as exc:  # the link closed under us: keep them for the next one
                logger.debug("could not report access failures: %s", exc)
                self.pages.requeue(failures)
                return

    async def attached(self, link: LinkContext) -> None:
        """Report on this link from now on."""
        self._link = link

    def detached(self, link: LinkContext) -> None:
        """Stop using the link."""
        if self._link is link:
            self._link = None

    def receive(self, message: Any, link: LinkContext) -> None:
        """Answer in a task of its own, so Caddy's latency never blocks the link's reader."""
        task = asyncio.get_running_loop().create_task(self._answer(message, link))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _answer(self, message: Any, link: LinkContext) -> None:
        try:
            if isinstance(message, EdgeConfigure):
                await link.send(await self.configure(message))
            elif isinstance(message, EdgeInspect):
                await link.send(await self.inspect(message))
        except Exception as exc:  # the link closed under the reply: the caller times out
            logger.debug("could not answer %s: %s", type(message).__name__, exc)

    async def configure(self, message: EdgeConfigure) -> EdgeConfigured:
        """Apply pushed settings and, for a bootstrap, rebuild the edge and every route."""
        try:
            async with self._changing:
                if message.settings is not None:
                    await self._edge.configure(message.settings)
                if message.bootstrap:
                    await self._edge.ensure_server()
                    if self.pages.dial:
                        await self._edge.install_failure_pages(self.pages.dial)
                    if self._restore_routes is not None:
                        await self._restore_routes()
        except PlatformError as exc:
            return EdgeConfigured(
                id=UNSTAMPED,
                re=message.id,
                attempt_id=message.attempt_id,
                status="failed",
                error=exc.to_body(),
                completed_at=datetime.now(UTC),
            )
        return EdgeConfigured(
            id=UNSTAMPED,
            re=message.id,
            attempt_id=message.attempt_id,
            status="succeeded",
            completed_at=datetime.now(UTC),
        )

    async def inspect(self, message: EdgeInspect) -> EdgeInspection:
        """The resource's routes as Caddy holds them now."""
        answer = EdgeInspection(
            id=UNSTAMPED,
            re=message.id,
            resource_id=message.resource_id,
            observed_at=datetime.now(UTC),
            listen=self._edge.listen,
            tls_listen=self._edge.tls_listen,
        )
        try:
            found = await self._edge.inspect(message.resource_id)
        except PlatformError as exc:
            return answer.model_copy(update={"error": exc.to_body()})
        routes = [AppliedRoute(server=k, route_id=i, config=c) for k, i, c in found]
        return answer.model_copy(update={"routes": routes[:500]})

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """A refused report is dropped (evidence is best effort)."""
        return False
