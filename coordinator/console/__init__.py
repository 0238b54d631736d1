"""The web console: built static files served under ``/console/`` with strict security headers."""

from importlib import resources
from pathlib import Path
from typing import Final

from aiohttp import web

from shared.errors import NotFound

__all__ = ["PREFIX", "SECURITY_HEADERS", "install"]

PREFIX: Final = "/console"
# Built by ``npm ci && npm run build`` in console/ (scripts/test.sh and quickstart.sh run it).
DIST: Final = Path(str(resources.files("coordinator.console").joinpath("dist")))

DIST_KEY: Final = web.AppKey("console_dist", Path)

# No inline script or style anywhere, nothing from another origin, never framed. 'self' in
# connect-src covers the same-origin API, its event streams and the terminal websocket.
CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# Asset names carry a content hash, so a cached copy can never be stale.
IMMUTABLE: Final = "public, max-age=31536000, immutable"
# index.html names the current hashes: always revalidate it.
REVALIDATE: Final = "no-cache"


def _not_built() -> NotFound:
    return NotFound(
        "this coordinator was installed without its web console;"
        " build it with 'npm ci && npm run build' in console/"
    )


def _asset(dist: Path, name: str) -> Path | None:
    """The file ``assets/<name>`` inside ``dist``, or None (never anything outside it)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = dist / "assets" / name
    return path if path.is_file() else None


async def _index(dist: Path) -> web.StreamResponse:
    index = dist / "index.html"
    if not index.is_file():
        raise _not_built()
    return web.FileResponse(
        index,
        headers={**SECURITY_HEADERS, "Cache-Control": REVALIDATE, "Content-Type": "text/html"},
    )


async def serve(request: web.Request) -> web.StreamResponse:
    """``GET /console/{path}``: a hashed asset, or index.html for every page address."""
    dist: Path = request.app[DIST_KEY]
    tail = request.match_info["tail"]
    if tail.startswith("assets/"):
        asset = _asset(dist, tail.removeprefix("assets/"))
        if asset is None:
            raise NotFound("no such console asset")
        # FileResponse sends a prebuilt .br/.gz sibling when the client accepts it.
        return web.FileResponse(asset, headers={**SECURITY_HEADERS, "Cache-Control": IMMUTABLE})
    return await _index(dist)


async def redirect(_request: web.Request) -> web.StreamResponse:
    """``GET /console``: the console lives under ``/console/``."""
    raise web.HTTPPermanentRedirect(PREFIX + "/", headers=SECURITY_HEADERS)


def install(app: web.Application, dist: Path = DIST) -> None:
    """Register the console's routes (static files, not API operations: no OpenAPI entry)."""
    app[DIST_KEY] = dist
    app.router.add_get(PREFIX, redirect)
    app.router.add_get(PREFIX + "/{tail:.*}", serve)
