"""The page a visitor gets when the edge cannot serve a request, and the evidence behind it.

Caddy's error routes (``handle_errors``) proxy the failed request here with what Caddy knows
(status, its error text, the request id, the route's resource) in ``X-Berth-*`` headers it sets
itself; this loopback server answers with a small HTML page naming the request id, keeps the
evidence in a bounded ring and queues it for the coordinator, at most ``REPORTS_PER_MINUTE``:
a flood of bad requests must not become a flood of rows.
"""

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from agent.edge_routes import NO_ROUTE_ERROR, STOPPED_ERROR, domain_route_id
from agent.http_server import LoopbackServer, Reply, Request
from shared.messages.edge import AccessFailure, AccessFailureCode
from shared.wire import checked

logger = logging.getLogger(__name__)

RING_SIZE: Final = 1000
REPORTS_PER_MINUTE: Final = 120
HEADER: Final = "X-Berth-"
_TITLES: Final[dict[AccessFailureCode, tuple[str, str]]] = {
    "resource_access_route_not_found": (
        "No application here",
        "This server has no application for this address.",
    ),
    "resource_access_resource_stopped": (
        "Application stopped",
        "The application at this address is stopped. Its owner can start it again.",
    ),
    "resource_access_upstream_unavailable": (
        "Application not reachable",
        "The application at this address is not answering. It may be restarting.",
    ),
    "resource_access_upstream_timeout": (
        "Application too slow",
        "The application at this address took too long to answer.",
    ),
    "resource_access_edge_error": (
        "Request not served",
        "The server could not pass this request to the application.",
    ),
}


def classify(status: int, cause: str) -> AccessFailureCode:
    """The failure's code from the edge's status and error text."""
    if cause == NO_ROUTE_ERROR:
        return "resource_access_route_not_found"
    if cause == STOPPED_ERROR:
        return "resource_access_resource_stopped"
    if status == 502:
        return "resource_access_upstream_unavailable"
    if status == 504:
        return "resource_access_upstream_timeout"
    return "resource_access_edge_error"


def render_page(failure: AccessFailure) -> str:
    """The visitor's page: what happened, in words, and the request id to quote."""
    # Imported here: ``html`` loads its entity tables (about 0.4 MiB) and a server whose apps
    # all answer never renders a page.
    import html

    title, text = _TITLES[failure.code]
    request_id = html.escape(failure.request_id)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{failure.http_status} {html.escape(title)}</title>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;"
        "padding:0 1em;color:#222}code{background:#eee;padding:.1em .3em}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        f"<p>HTTP {failure.http_status} for <code>{html.escape(failure.hostname)}</code></p>"
        f"<p>Request id: <code id=request-id>{request_id}</code><br>"
        "Quote it to the site's operator: it finds what happened to this request.</p>"
        f"<p><small>{failure.observed_at.isoformat(timespec='seconds')}</small></p>"
        "</body></html>\n"
    )


def _header(request: Request, name: str, limit: int) -> str:
    return request.headers.get((HEADER + name).lower(), "")[:limit]


def _optional(value: str) -> str | None:
    return value or None


class AccessFailures:
    """The failure pages' loopback server, the evidence ring and the queue for the coordinator."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: LoopbackServer | None = None
        self.dial = ""
        self.ring: deque[AccessFailure] = deque(maxlen=RING_SIZE)
        self._pending: list[AccessFailure] = []
        self._window_start = 0.0
        self._window_count = 0
        self.unreported = 0
        # The edge's host -> (resource, binding) of its HTTPS host routes, whose requests name
        # their resource only (``agent/edge_tls_map.py``); None: no such routes.
        self.host_binding: Callable[[str], tuple[str, str] | None] | None = None

    async def start(self) -> str:
        """Listen; return the ``host:port`` Caddy dials."""
        self._server = LoopbackServer(self._serve, self._host, self._port)
        port = await self._server.start()
        self.dial = f"{self._host}:{port}"
        return self.dial

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def evidence(self, request: Request) -> AccessFailure | None:
        """The failure Caddy describes in the request's headers (None when it is not Caddy's)."""
        request_id = _header(request, "Request-Id", 64)
        status_text = _header(request, "Status", 3)
        if not status_text.isdigit() or not 400 <= int(status_text) <= 599:
            return None
        status = int(status_text)
        cause = _header(request, "Error", 500)
        hostname = _header(request, "Host", 255)
        resource_id = _optional(_header(request, "Resource", 64))
        binding_id = _optional(_header(request, "Binding", 64))
        route_id = _optional(_header(request, "Route", 160))
        if binding_id is None and resource_id is not None and self.host_binding is not None:
            found = self.host_binding(hostname)
            if found is not None and found[0] == resource_id:
                binding_id, route_id = found[1], domain_route_id(resource_id, found[1])
        try:
            return checked(
                AccessFailure(
                    request_id=request_id,
                    observed_at=datetime.now(UTC),
                    code=classify(status, cause),
                    http_status=status,
                    hostname=hostname,
                    path=_header(request, "Uri", 2048),
                    method=_header(request, "Method", 16),
                    scheme="https" if _header(request, "Scheme", 5) == "https" else "http",
                    resource_id=resource_id,
                    domain_binding_id=binding_id,
                    route_id=route_id,
                    cause=cause,
                )
            )
        except ValueError:
            return None  # a request id that is not Caddy's uuid: nobody could look it up

    def _serve(self, request: Request) -> Reply:
        failure = self.evidence(request)
        if failure is None:
            return Reply(400, "not a request from the edge proxy\n")
        self.record(failure)
        return Reply(
            failure.http_status,
            render_page(failure),
            content_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-store", "X-Berth-Request-Id": failure.request_id},
        )

    def record(self, failure: AccessFailure) -> None:
        """Keep the evidence; queue it for the coordinator unless this minute's share is used."""
        self.ring.append(failure)
        now = time.monotonic()
        if now - self._window_start >= 60.0:
            self._window_start, self._window_count = now, 0
        if self._window_count >= REPORTS_PER_MINUTE:
            self.unreported += 1
            return
        self._window_count += 1
        self._pending.append(failure)

    def take(self, limit: int) -> list[AccessFailure]:
        """The oldest queued failures (up to ``limit``), removed from the queue."""
        taken, self._pending = self._pending[:limit], self._pending[limit:]
        return taken

    def requeue(self, failures: list[AccessFailure]) -> None:
        """Failures a report could not carry go back to the front (still bounded by the rate)."""
        self._pending[:0] = failures
        del self._pending[REPORTS_PER_MINUTE:]
