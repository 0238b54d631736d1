"""HTTPS host routes: a resource's HTTPS bindings that only proxy their host, as one route.

HTTPS bindings were two routes each (the TLS server's and its HTTP redirect), and then entries
of one host map route. Caddy loads its whole config at each admin write, and the map's entries
(a host, its resource and binding, each with an id) were two thirds of that config at 1,000
names: a write took twice as long as with a route per resource (``bench/edge_layouts.py``).
So each resource has one route on the TLS server, ``berth-<resource>.~hosts-tls``, whose host
matcher lists its names and which proxies to its upstreams. Caddy's automatic HTTPS manages a
certificate for every name in a host matcher of the TLS server's routes, so each name is
ordered when it is added, as with a route of its own. One route of the HTTP server,
``berth-edge-https-redirects``, sends all these names to HTTPS.

Which binding each name belongs to is the agent's alone: Caddy never needs it to serve, and a
list of binding ids in every route made each write load about a fifth more config (a third
with production-length ids). The agent keeps it in its copy (``TLS_MAP_ENTRIES``) and learns
it again after a restart from its containers' labels, as it learns every route; until then a
name read back from Caddy is an entry whose binding is unread (``unread``), which the first
reconciliation replaces without writing anything (the route it renders is the same). An
earlier agent's routes, which carried the ids (``berth_bindings``), are read with them, then
rewritten without. A failed request's binding is looked up from its host by the agent
(``HostIndex``), not per request by Caddy.

The agent keeps its copy of these as entries, as for the plain host map (``TLS_MAP_ENTRIES``:
host -> resource and binding; ``TLS_MAP_UPSTREAMS``: resource -> dials), and a change writes
the routes that differ from them, in the change's one write (``agent/edge_batch.py``).
"""

from collections.abc import Iterable
from typing import Any, Final

from agent.edge_map import upstreams_entry
from agent.edge_routes import domain_route_id, https_redirect, proxy, route_id, tag

# Where the agent's copy keeps the entries (not paths in Caddy's config).
TLS_MAP_ENTRIES: Final = "tls-hosts:entries"
TLS_MAP_UPSTREAMS: Final = "tls-hosts:upstreams"
REDIRECTS_ROUTE_ID: Final = "berth-edge-https-redirects"
# The upstream entries' ids end so (the plain map's have no suffix).
TLS_UPSTREAMS_SUFFIX: Final = "-tls"
# An earlier agent's single HTTPS map route, turned into host routes when found.
OLD_TLS_MAP_ROUTE_ID: Final = "berth-edge-map-tls"
_HOSTS_SUFFIX: Final = ".~hosts-tls"
# An earlier agent's list of the route's binding ids, in the order of its hosts.
_BINDINGS_VAR: Final = "berth_bindings"
# The binding of a name read back from Caddy before the agent learned it again.
_UNREAD: Final = ""


def hosts_route_id(resource_id: str) -> str:
    """The id of the resource's host route: under its route id (so it goes with the
    resource), with a ``~`` no binding id may contain."""
    return route_id(resource_id) + _HOSTS_SUFFIX


def is_hosts_route(route_id_: str) -> bool:
    """Whether ``route_id_`` names a host route."""
    return route_id_.endswith(_HOSTS_SUFFIX)


def host_match(names: Iterable[str]) -> list[dict[str, Any]]:
    """A matcher for exactly ``names``; none (an empty list) matches no request."""
    return [{"host": sorted(names)}]


def hosts_route(
    resource_id: str, entries: Iterable[dict[str, Any]], upstreams: list[str]
) -> dict[str, Any]:
    """The resource's host route for its host ``entries`` (``map_entry``), proxying to
    ``upstreams``."""
    own = hosts_route_id(resource_id)
    return {
        "@id": own,
        "match": host_match(str(e["input"]) for e in entries),
        "handle": [tag(resource_id, own), proxy(upstreams)],
        "terminal": True,
    }


def hosts_routes(
    entries: Iterable[dict[str, Any]], upstreams: Iterable[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The host routes, by id, for host ``entries`` and the resources' upstream entries (a
    resource without an upstream entry has none)."""
    dials = {str(u.get("input")): dials_of(u) for u in upstreams}
    by_resource: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_resource.setdefault(str(entry["outputs"][0]), []).append(entry)
    return {
        hosts_route_id(resource_id): hosts_route(resource_id, found, dials[resource_id])
        for resource_id, found in sorted(by_resource.items())
        if dials.get(resource_id)
    }


def _handlers(route: object) -> list[dict[str, Any]]:
    handle = route.get("handle") if isinstance(route, dict) else None
    return [h for h in handle if isinstance(h, dict)] if isinstance(handle, list) else []


def hosts_of(route: object) -> list[str]:
    """The names a route's first host matcher lists."""
    match = route.get("match") if isinstance(route, dict) else None
    first = match[0] if isinstance(match, list) and match and isinstance(match[0], dict) else {}
    hosts = first.get("host")
    return [str(h) for h in hosts] if isinstance(hosts, list) else []


def read_hosts_route(route: object) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A host route as Caddy holds it, as the agent's entries: its host entries (their binding
    ``unread``, unless an earlier agent's route names it) and its upstream entry (None when
    it cannot be read: the next change rewrites it)."""
    handlers = _handlers(route)
    names = next((h for h in handlers if h.get("handler") == "vars"), {})
    resource_id, listed = names.get("berth_resource"), names.get(_BINDINGS_VAR)
    hosts = hosts_of(route)
    if not isinstance(resource_id, str):
        return [], None
    bindings = [str(b) for b in listed] if isinstance(listed, list) else []
    if len(bindings) != len(hosts):
        bindings = [_UNREAD] * len(hosts)
    dials = [
        str(u.get("dial"))
        for h in handlers
        for u in h.get("upstreams") or []
        if isinstance(u, dict) and u.get("dial")
    ]
    entries = [
        {
            "@id": domain_route_id(resource_id, binding or f"~unread~{host}"),
            "input": host,
            "outputs": [resource_id, binding],
        }
        for host, binding in zip(hosts, bindings, strict=True)
    ]
    upstreams = upstreams_entry(resource_id, dials, TLS_UPSTREAMS_SUFFIX) if dials else None
    return entries, upstreams


def unread(entry: dict[str, Any]) -> bool:
    """Whether a host entry was read back from Caddy without its binding (the agent learns it
    at its next reconciliation of the resource)."""
    outputs = entry.get("outputs")
    return isinstance(outputs, list) and len(outputs) > 1 and outputs[1] == _UNREAD


def dials_of(upstreams_entry_: dict[str, Any]) -> list[str]:
    """The upstreams an upstream entry names (its slots repeat them)."""
    outputs = upstreams_entry_.get("outputs")
    return list(dict.fromkeys(str(o) for o in outputs)) if isinstance(outputs, list) else []


def shown_binding(route: dict[str, Any], host: str) -> dict[str, Any]:
    """A host route with only ``host`` in it: what serves that name's binding, without the
    resource's other names."""
    return {**route, "match": [{"host": [host]}]}


def redirects_route(names: Iterable[str], https_port: int) -> dict[str, Any]:
    """The HTTP server's route sending the host routes' names to HTTPS (308, path and query
    kept). ACME's HTTP-01 challenge is answered by Caddy before any route."""
    return {
        "@id": REDIRECTS_ROUTE_ID,
        "match": host_match(names),
        "handle": [https_redirect(https_port)],
    }


class HostIndex:
    """Host name -> (resource, binding) of the host routes' names, for the failure pages:
    a host route's requests carry its resource, not which of its names they came for."""

    def __init__(self) -> None:
        self._bindings: dict[str, tuple[str, str]] = {}

    def rebuild(self, entries: Iterable[dict[str, Any]]) -> None:
        """Take the agent's entries (``TLS_MAP_ENTRIES``) after a change."""
        self._bindings = {
            str(e["input"]): (str(e["outputs"][0]), str(e["outputs"][1]))
            for e in entries
            if not unread(e)
        }

    def binding(self, host: str) -> tuple[str, str] | None:
        """The resource and binding a host route serves ``host`` for, if any."""
        return self._bindings.get(host.lower())
