"""On-demand TLS's ``ask`` check: a loopback endpoint Caddy calls before it orders a certificate.

It lives in the agent, on 127.0.0.1 only: the agent knows which host names it has put on its
Caddy's HTTPS server (from memory, no database, no network hop, so it answers in well under a
millisecond and still answers while the coordinator is unreachable), and nothing outside the
server can reach it to learn or widen that list.
"""

import logging
from collections.abc import Callable
from typing import Final

from aiohttp import web

from agent.edge_on_demand import AskForm

logger = logging.getLogger(__name__)

ASK_PATH: Final = "/berth/on-demand-tls/ask"


class OnDemandAsk:
    """Answers Caddy's ``GET <ask>?domain=NAME``: 200 when ``allowed(NAME)``, else 403
    (Caddy refuses the handshake and orders nothing for any answer that is not 2xx)."""

    def __init__(self, allowed: Callable[[str], bool], host: str = "127.0.0.1") -> None:
        self._allowed = allowed
        self._host = host
        self._runner: web.AppRunner | None = None
        self.url = ""
        # How the Caddy that calls this endpoint takes its URL (one ask per Caddy driven).
        self.form = AskForm()

    async def start(self) -> str:
        """Listen on an ephemeral loopback port (once); return the URL Caddy asks."""
        if self._runner is not None:
            return self.url
        app = web.Application()
        app.router.add_get(ASK_PATH, self._ask)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, 0)
        await site.start()
        self._runner = runner
        self.url = f"http://{self._host}:{runner.addresses[0][1]}{ASK_PATH}"
        return self.url

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.url = ""

    async def _ask(self, request: web.Request) -> web.Response:
        name = request.query.get("domain", "").strip().lower().rstrip(".")
        if name and self._allowed(name):
            return web.Response(status=200, text="ok\n")
        # Said at debug level only: anyone can make Caddy ask by sending an SNI name.
        logger.debug("on-demand TLS refused for %r: Berth routes no such name here", name)
        return web.Response(status=403, text="not routed by Berth on this server\n")
