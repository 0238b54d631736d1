"""Browser ``Origin`` check for websocket upgrades (agent link, terminal attach).

Browsers let any page open a websocket to any host and send along whatever credentials they
hold, so a websocket must refuse a page from somewhere else (cross-site websocket hijacking).
Browsers say where the page came from in ``Origin``; agents and command-line clients send none
and stay allowed. A present ``Origin`` must be the coordinator's own: the ``--public-url``
origin when it is set, otherwise the host the request was addressed to (scheme ignored, as a
TLS-terminating proxy in front may have changed it).
"""

from typing import Final

from aiohttp import web
from yarl import URL

from coordinator.appkeys import SETTINGS_KEY
from shared.errors import Forbidden

_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _parse(origin: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of an origin, or None when it is not a usable one ("null")."""
    try:
        url = URL(origin)
    except ValueError:
        return None
    if not url.scheme or not url.host or url.path not in ("", "/") or url.query_string:
        return None
    scheme = url.scheme.lower()
    return scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(scheme)


def _host_port(host_header: str, scheme: str) -> tuple[str, int | None] | None:
    parsed = _parse(f"{scheme}://{host_header}")
    return None if parsed is None else (parsed[1], parsed[2])


def origin_allowed(request: web.Request) -> bool:
    """Whether ``request`` carries no ``Origin`` or the coordinator's own."""
    sent = request.headers.get("Origin")
    if sent is None:
        return True
    origin = _parse(sent.strip())
    if origin is None:
        return False
    public_url = request.app[SETTINGS_KEY].public_url
    if public_url:
        return origin == _parse(str(URL(public_url).origin()))
    own = _host_port(request.host, origin[0])
    return own is not None and own == origin[1:]


def require_own_origin(request: web.Request) -> None:
    """Raise ``Forbidden`` (before any upgrade) when a browser page from elsewhere connects."""
    if not origin_allowed(request):
        raise Forbidden(
            "this websocket does not accept connections from other sites' pages",
            details={"origin": request.headers.get("Origin", "")[:200]},
        )
