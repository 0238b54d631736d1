"""Putting the edge's servers in place: the HTTP and TLS servers, the failure pages, the host
maps and the fallback routes, each written only where Caddy's config differs."""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

from agent.edge_admin import AdminCall
from agent.edge_map import MAP_ROUTE_ID, map_route, upgraded
from agent.edge_on_demand import AskForm
from agent.edge_routes import (
    FALLBACK_ROUTE_ID,
    TLS_FALLBACK_ROUTE_ID,
    failure_errors,
    fallback_route,
)
from agent.edge_tls import (
    TLS_SERVER_NAME,
    EdgeTls,
    OnDemandForm,
    listen_port,
    tls_app,
    tls_server,
)
from agent.edge_tls_map import (
    OLD_TLS_MAP_ROUTE_ID,
    REDIRECTS_ROUTE_ID,
    hosts_of,
    hosts_routes,
    is_hosts_route,
    redirects_route,
)
from shared.errors import RuntimeFailed

SERVER_NAME: Final = "berth"
SERVERS_PATH: Final = "/config/apps/http/servers"
SERVER_PATH: Final = f"{SERVERS_PATH}/{SERVER_NAME}"
TLS_SERVER_PATH: Final = f"{SERVERS_PATH}/{TLS_SERVER_NAME}"
# The last route of each server: an unknown host there is the 404 failure page.
FALLBACKS: Final = {SERVER_PATH: FALLBACK_ROUTE_ID, TLS_SERVER_PATH: TLS_FALLBACK_ROUTE_ID}


@dataclass(frozen=True)
class EdgeWanted:
    """What the servers must be: listen addresses, HTTPS, HTTP/3, failure pages, ask URL."""

    listen: str
    tls: EdgeTls | None
    http3: bool
    failure_dial: str
    ask_url: str
    on_demand_bases: Collection[str]


def _server(listen: str) -> dict[str, Any]:
    return {"listen": [listen], "routes": [], "automatic_https": {"disable": True}}


async def ensure_servers(call: AdminCall, wanted: EdgeWanted, ask_form: AskForm) -> None:
    """Create ``apps.http.servers.berth`` (and the parents that are missing), the TLS server
    when HTTPS is on, the failure pages and the host map; keep what is already right.
    ``ask_form``: how this Caddy takes the on-demand ask setting (learned, remembered)."""
    config = await call("GET", "/config/")
    if not isinstance(config, dict):
        # Empty config: POST at the root would be accepted, but keep the admin block if any.
        await call("POST", "/config/", {"apps": {"http": {"servers": {}}}})
        config = {"apps": {"http": {"servers": {}}}}
    apps = config.get("apps")
    if not isinstance(apps, dict):
        await call("POST", "/config/apps", {"http": {"servers": {}}})
        apps = {"http": {"servers": {}}}
    http = apps.get("http")
    if not isinstance(http, dict):
        await call("POST", "/config/apps/http", {"servers": {}})
        http = {"servers": {}}
    servers = http.get("servers")
    if not isinstance(servers, dict):
        await call("POST", "/config/apps/http/servers", {})
        servers = {}
    listen = wanted.listen
    if SERVER_NAME not in servers:
        for name, server in servers.items():
            if isinstance(server, dict) and listen in (server.get("listen") or []):
                # Caddy would refuse two servers on one address with a terse error.
                raise RuntimeFailed(
                    f"Caddy server {name!r} already listens on {listen}: remove it "
                    "from Caddy's config or set BERTH_AGENT_EDGE_LISTEN to another address"
                )
        await call("POST", SERVER_PATH, _server(listen))
    else:
        if not isinstance(servers[SERVER_NAME].get("routes"), list):
            await call("POST", f"{SERVER_PATH}/routes", [])
        if servers[SERVER_NAME].get("listen") != [listen]:
            # PATCH replaces (POST on an array would append to it).
            await call("PATCH", f"{SERVER_PATH}/listen", [listen])
    if wanted.tls is not None:
        await _ensure_tls(call, wanted, wanted.tls, http, servers, ask_form)
    if wanted.failure_dial:
        await _ensure_failure_pages(call, wanted, servers)
    await _ensure_map(call)
    if wanted.tls is not None:
        await _ensure_tls_map(call, listen_port(wanted.tls.listen, 443))


async def _routes(call: AdminCall, path: str, servers: dict[str, Any]) -> list[Any]:
    server = servers.get(path.rsplit("/", 1)[1])
    routes = server.get("routes") if isinstance(server, dict) else None
    if not isinstance(routes, list):
        # A server created by this pass: read what it holds now.
        held = await call("GET", f"{path}/routes", missing_ok=True)
        routes = held if isinstance(held, list) else []
    return routes


async def _ensure_failure_pages(
    call: AdminCall, wanted: EdgeWanted, servers: dict[str, Any]
) -> None:
    errors = failure_errors(wanted.failure_dial)
    names = [SERVER_NAME] + ([TLS_SERVER_NAME] if wanted.tls is not None else [])
    for name in names:
        server = servers.get(name)
        if not isinstance(server, dict) or server.get("errors") != errors:
            await call("POST", f"/config/apps/http/servers/{name}/errors", errors)
    for path in (SERVER_PATH, TLS_SERVER_PATH)[: len(names)]:
        fallback = FALLBACKS[path]
        routes = await _routes(call, path, servers)
        if routes and isinstance(routes[-1], dict) and routes[-1].get("@id") == fallback:
            continue
        await call("DELETE", f"/id/{fallback}", missing_ok=True)
        await call("POST", f"{path}/routes", fallback_route(fallback))


async def _ensure_map(call: AdminCall) -> None:
    """The host map on the HTTP server, before its fallback; a map whose handlers differ
    from this agent's (an older agent's, or edited by hand) is rewritten keeping its entries
    (an older agent's single map split into this agent's two, ``upgraded``)."""
    current = await call("GET", f"/id/{MAP_ROUTE_ID}", missing_ok=True)
    wanted = map_route(*upgraded(current)) if isinstance(current, dict) else map_route()
    await _put_before_fallback(call, SERVER_PATH, current, wanted)


async def _ensure_tls_map(call: AdminCall, https_port: int) -> None:
    """The redirects of the HTTPS host routes' names on the HTTP server
    (``agent/edge_tls_map.py``), before its fallback, rewritten where it differs. An earlier
    agent's HTTPS map route is turned into host routes first, so nothing it served is lost."""
    old = await call("GET", f"/id/{OLD_TLS_MAP_ROUTE_ID}", missing_ok=True)
    if isinstance(old, dict):
        for route in hosts_routes(*upgraded(old)).values():
            current = await call("GET", f"/id/{route['@id']}", missing_ok=True)
            await _put_before_fallback(call, TLS_SERVER_PATH, current, route)
        await call("DELETE", f"/id/{OLD_TLS_MAP_ROUTE_ID}", missing_ok=True)
    routes = await call("GET", f"{TLS_SERVER_PATH}/routes", missing_ok=True)
    names = [
        host
        for route in (routes if isinstance(routes, list) else [])
        if isinstance(route, dict) and is_hosts_route(str(route.get("@id")))
        for host in hosts_of(route)
    ]
    redirects = redirects_route(names, https_port)
    current = await call("GET", f"/id/{REDIRECTS_ROUTE_ID}", missing_ok=True)
    await _put_before_fallback(call, SERVER_PATH, current, redirects)


async def _put_before_fallback(
    call: AdminCall, server: str, current: object, wanted: dict[str, Any]
) -> None:
    """Replace ``current`` (the route as Caddy holds it) by ``wanted`` if they differ; with
    none, add ``wanted`` in front of ``server``'s fallback route (or last, without one)."""
    if isinstance(current, dict):
        if current != wanted:
            await call("PATCH", f"/id/{wanted['@id']}", wanted)
        return
    fallback = FALLBACKS[server]
    if isinstance(await call("GET", f"/id/{fallback}", missing_ok=True), dict):
        # PUT at the fallback's id inserts in front of it, wherever it is.
        await call("PUT", f"/id/{fallback}", wanted)
    else:
        await call("POST", f"{server}/routes", wanted)


async def _ensure_tls(
    call: AdminCall,
    wanted: EdgeWanted,
    tls: EdgeTls,
    http: dict[str, Any],
    servers: dict[str, Any],
    ask_form: AskForm,
) -> None:
    wanted_server = tls_server(tls)
    if wanted.http3:
        # Configured through the API: Caddy then also listens on UDP for HTTP/3.
        wanted_server["protocols"] = ["h1", "h2", "h3"]
    current = servers.get(TLS_SERVER_NAME)
    if not isinstance(current, dict):
        await call("POST", TLS_SERVER_PATH, wanted_server)
    else:
        for key in ("listen", "protocols"):
            if current.get(key) != wanted_server[key]:
                # PATCH replaces an existing array; POST sets a missing key.
                method = "PATCH" if key in current else "POST"
                await call(method, f"{TLS_SERVER_PATH}/{key}", wanted_server[key])
    # Caddy answers HTTP-01 on, and sends HTTPS to, these ports: they must be the edge's.
    for key, port in (
        ("http_port", listen_port(wanted.listen, 80)),
        ("https_port", listen_port(tls.listen, 443)),
    ):
        if http.get(key) != port:
            await call("POST", f"/config/apps/http/{key}", port)

    def app(form: OnDemandForm) -> dict[str, Any]:
        return tls_app(tls, wanted.ask_url, wanted.on_demand_bases, form)

    def automation(form: OnDemandForm) -> Any:
        return app(form)["automation"]

    current_app = await call("GET", "/config/apps/tls", missing_ok=True)
    if not isinstance(current_app, dict):
        await ask_form.write(call, "/config/apps/tls", app)
    elif not ask_form.holds(current_app.get("automation"), automation):
        # Only the automation part is the edge's: imported certificates live beside it.
        await ask_form.write(call, "/config/apps/tls/automation", automation)
