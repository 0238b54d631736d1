"""What the edge holds for one resource, read back from Caddy for the proxy preview."""

from collections.abc import Callable
from typing import Any, Literal

from agent.edge_admin import AdminCall
from agent.edge_map import MAP_ROUTE_ID, entries, shown
from agent.edge_routes import domain_route_id, route_id
from agent.edge_setup import SERVER_PATH, TLS_SERVER_PATH
from agent.edge_tls_map import is_hosts_route, read_hosts_route, shown_binding

Served = tuple[Literal["http", "https"], str, dict[str, Any]]
_SERVERS: tuple[tuple[Literal["http", "https"], str], ...] = (
    ("http", SERVER_PATH),
    ("https", TLS_SERVER_PATH),
)


async def inspect_routes(
    call: AdminCall,
    resource_id: str,
    host_binding: Callable[[str], tuple[str, str] | None],
) -> list[Served]:
    """The resource's routes as Caddy holds them: (``http``/``https``, id, JSON). A binding
    in a host map shows as the map route with its entry (and its resource's upstreams)
    alone, a binding of an HTTPS host route as that route with its name alone (which binding
    a name is comes from ``host_binding``, the agent's: Caddy does not hold it)."""
    own = route_id(resource_id)
    found: list[Served] = []
    for kind, server in _SERVERS:
        routes = await call("GET", f"{server}/routes", missing_ok=True)
        for r in routes if isinstance(routes, list) else []:
            rid = str(r.get("@id", "")) if isinstance(r, dict) else ""
            if is_hosts_route(rid) and rid.startswith(own + "."):
                # Each name of an HTTPS host route shows as its binding, with its host alone.
                for entry in read_hosts_route(r)[0]:
                    host = str(entry["input"])
                    known = host_binding(host)
                    shown_id = (
                        domain_route_id(resource_id, known[1])
                        if known is not None and known[0] == resource_id
                        else str(entry["@id"])
                    )
                    found.append((kind, shown_id, shown_binding(r, host)))
            elif rid == own or rid.startswith(own + "."):
                found.append((kind, rid, r))
            if rid == MAP_ROUTE_ID:
                for entry in entries(r):
                    if str(entry.get("@id", "")).startswith(own + "."):
                        found.append((kind, str(entry["@id"]), shown(r, entry)))
    return found
