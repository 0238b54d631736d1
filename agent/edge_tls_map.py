"""The HTTPS host map: the TLS server's bindings that only proxy their host, as map entries.

The plain host map (``agent/edge_map.py``) made a plain-HTTP add one small write. HTTPS
bindings were still two routes each (the TLS server's and its HTTP redirect), so an add
re-provisioned about 2,000 routes with a proxy each. Here the same two maps serve them from
one route of the TLS server, ``berth-edge-map-tls``. Caddy must still learn the names, since
its automatic HTTPS manages a certificate for each name in a host matcher of the TLS server's
routes: that route's matcher lists the mapped names (kept equal to its host entries), and one
route of the HTTP server, ``berth-edge-https-redirects``, sends the same names to HTTPS. So
every name stays a managed certificate, ordered when it is added, as with a route of its own
(the on-demand alternative left names without an order: ``bench/README.md``).

An add is the map route (its entries and matcher) and the redirects' matcher, which go to
Caddy in the change's one write (``agent/edge_batch.py``), whatever the number of bindings. What
that write costs then depends on the Caddy: 2.6 re-loads every managed certificate from storage
on each write, current releases do not (``bench/edge_reload.py``).
"""

from collections.abc import Iterable
from typing import Any, Final

from agent.edge_map import entries, map_route, upstream_entries
from agent.edge_routes import https_redirect

TLS_MAP_ROUTE_ID: Final = "berth-edge-map-tls"
TLS_MAP_ENTRIES: Final = f"/id/{TLS_MAP_ROUTE_ID}/handle/0/mappings"
TLS_MAP_UPSTREAMS: Final = f"/id/{TLS_MAP_ROUTE_ID}/handle/1/mappings"
REDIRECTS_ROUTE_ID: Final = "berth-edge-https-redirects"
# The HTTPS map's upstream entry ids end so (the plain map's have no suffix).
TLS_UPSTREAMS_SUFFIX: Final = "-tls"


def host_match(names: Iterable[str]) -> list[dict[str, Any]]:
    """A matcher for exactly ``names``; none (an empty list) matches no request."""
    return [{"host": sorted(names)}]


def mapped_names(host_entries: Iterable[dict[str, Any]]) -> list[str]:
    """The host names of the HTTPS map's entries."""
    return sorted(str(e.get("input")) for e in host_entries)


def tls_map_route(
    mappings: list[Any] | None = None, upstreams: list[Any] | None = None
) -> dict[str, Any]:
    """The HTTPS map route: the plain map's handlers, matching only its entries' names."""
    route = map_route(mappings, upstreams, TLS_MAP_ROUTE_ID)
    return {**route, "match": host_match(mapped_names(mappings or []))}


def redirects_route(names: Iterable[str], https_port: int) -> dict[str, Any]:
    """The HTTP server's route sending the HTTPS map's names to HTTPS (308, path and query
    kept). ACME's HTTP-01 challenge is answered by Caddy before any route."""
    return {
        "@id": REDIRECTS_ROUTE_ID,
        "match": host_match(names),
        "handle": [https_redirect(https_port)],
    }


def tls_map_wanted(current: object) -> dict[str, Any]:
    """The HTTPS map route this agent writes, keeping the entries of ``current`` (the route
    as Caddy holds it, or anything else when there is none)."""
    return tls_map_route(entries(current), upstream_entries(current))
