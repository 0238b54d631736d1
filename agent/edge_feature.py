"""The edge feature: serves the failure pages, wires them into Caddy, reports access failures."""

import asyncio
import logging
from typing import Any, Final

from agent.access_failures import AccessFailures
from agent.edge import CaddyEdge
from agent.features import LinkContext
from shared.errors import PlatformError
from shared.messages import UNSTAMPED
from shared.messages.edge import EDGE_CAPABILITY, MAX_FAILURES_PER_REPORT, AccessFailureReport

logger = logging.getLogger(__name__)

REPORT_SECONDS: Final = 1.0
_INSTALL_RETRY_MAX_SECONDS: Final = 30.0


class EdgeFeature:
    """Owns the failure pages for the daemon's life; reports failures on whichever link is up."""

    def __init__(self, edge: CaddyEdge, pages: AccessFailures | None = None) -> None:
        self._edge = edge
        self.pages = pages or AccessFailures()
        self._link: LinkContext | None = None

    @property
    def message_types(self) -> frozenset[str]:
        """No coordinator frames yet."""
        return frozenset()

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
                    # Caddy not up yet: the routes' own restore installs them later as well.
                    logger.warning("cannot install the failure pages in Caddy: %s", exc.message)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _INSTALL_RETRY_MAX_SECONDS)
            while True:
                await asyncio.sleep(REPORT_SECONDS)
                await self._report()
        finally:
            await self.pages.stop()

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
        """No frames are consumed."""

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """A refused report is dropped (evidence is best effort)."""
        return False
