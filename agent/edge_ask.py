"""On-demand TLS's ``ask`` check: a loopback endpoint Caddy calls before it orders a certificate.

It lives in the agent, on 127.0.0.1 only: the agent knows which host names it has put on its
Caddy's HTTPS server (from memory, no database, no network hop, so it answers in well under a
millisecond and still answers while the coordinator is unreachable), and nothing outside the
server can reach it to learn or widen that list.
"""

import logging
from collections.abc import Callable
from typing import Final

from agent.edge_on_demand import AskForm
from agent.http_server import LoopbackServer, Reply, Request

logger = logging.getLogger(__name__)

ASK_PATH: Final = "/berth/on-demand-tls/ask"


class OnDemandAsk:
    """Answers Caddy's ``GET <ask>?domain=NAME``: 200 when ``allowed(NAME)``, else 403
    (Caddy refuses the handshake and orders nothing for any answer that is not 2xx)."""

    def __init__(self, allowed: Callable[[str], bool], host: str = "127.0.0.1") -> None:
        self._allowed = allowed
        self._host = host
        self._server: LoopbackServer | None = None
        self.url = ""
        # How the Caddy that calls this endpoint takes its URL (one ask per Caddy driven).
        self.form = AskForm()

    async def start(self) -> str:
        """Listen on an ephemeral loopback port (once); return the URL Caddy asks."""
        if self._server is not None:
            return self.url
        server = LoopbackServer(self._answer, self._host, 0)
        port = await server.start()
        self._server = server
        self.url = f"http://{self._host}:{port}{ASK_PATH}"
        return self.url

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            await self._server.stop()
            self._server = None
            self.url = ""

    def _answer(self, request: Request) -> Reply:
        if request.path != ASK_PATH:
            return Reply(404, "not found\n")
        if request.method not in ("GET", "HEAD"):
            return Reply(405, "method not allowed\n", headers={"Allow": "GET, HEAD"})
        name = request.query.get("domain", "").strip().lower().rstrip(".")
        if name and self._allowed(name):
            return Reply(200, "ok\n")
        # Said at debug level only: anyone can make Caddy ask by sending an SNI name.
        logger.debug("on-demand TLS refused for %r: Berth routes no such name here", name)
        return Reply(403, "not routed by Berth on this server\n")
