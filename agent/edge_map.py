"""The host map: one route of the HTTP server dispatching the common bindings by host name.

A binding that only proxies a host name to its resource's containers (no path prefix, no
redirect, no ownership token) is not a route of its own but one entry of a Caddy 2.6
``http.handlers.map`` keyed on the request's host: the entry sets the upstream dials and the
failure pages' ``vars``, and one ``reverse_proxy`` whose upstreams are those placeholders serves
every such host. Adding or changing a binding is then one write of one small entry (by its
``@id``), and a request finds its host without walking a route per binding.
"""

from typing import Any, Final

from agent.edge_routes import domain_route_id, proxy, tag
from shared.messages.deploy import DomainRoute

MAP_ROUTE_ID: Final = "berth-edge-map"
# Where the entries live: Caddy's admin API resolves the id, so the path holds wherever the
# route sits in the server's list (an entry has an ``@id`` of its own too).
MAP_ENTRIES: Final = f"/id/{MAP_ROUTE_ID}/handle/0/mappings"
# Upstream placeholders of the shared proxy. An entry fills all of them, repeating its
# upstreams in order, so Caddy's random choice spreads evenly only when their count divides
# this: 1, 2 or 4 upstreams are mapped (blue-green's old and new container is 2), others
# keep a route of their own.
SLOTS: Final = 4
_UPSTREAMS = [f"berth.up{i}" for i in range(SLOTS)]
# The failure pages' tags, in the order of an entry's outputs after the upstreams.
_TAGS = ["berth.resource", "berth.binding", "berth.route"]
_DESTINATIONS = [f"{{{name}}}" for name in (*_UPSTREAMS, *_TAGS)]


def map_route(mappings: list[Any] | None = None) -> dict[str, Any]:
    """The map route with ``mappings``: not terminal, so a host it does not hold goes on to
    the routes after it (the fallback's 404 page)."""
    return {
        "@id": MAP_ROUTE_ID,
        "handle": [
            {
                "handler": "map",
                "source": "{http.request.host}",
                "destinations": list(_DESTINATIONS),
                "mappings": list(mappings or []),
                # An unknown host maps to "": the proxy's matcher below then does not match.
                "defaults": [""] * len(_DESTINATIONS),
            },
            {
                "handler": "subroute",
                "routes": [
                    {
                        "match": [{"not": [{"vars": {_DESTINATIONS[0]: [""]}}]}],
                        "handle": [
                            tag("{berth.resource}", "{berth.route}", "{berth.binding}"),
                            proxy(_DESTINATIONS[:SLOTS]),
                        ],
                    }
                ],
            },
        ],
    }


def mappable(domain: DomainRoute, upstreams: list[str]) -> bool:
    """Whether the binding can be a map entry: it proxies its whole host to 1, 2 or 4
    upstreams and answers nothing else (its other kinds stay routes, before the map)."""
    return (
        domain.path_prefix in ("", "/")
        and domain.redirect_to is None
        and domain.ownership_token is None
        and upstreams != []
        and SLOTS % len(upstreams) == 0
        and len(set(upstreams)) == len(upstreams)
        # The map compares the host exactly; Caddy's host matcher ignores case.
        and domain.domain_name == domain.domain_name.lower()
        and "*" not in domain.domain_name
    )


def map_entry(resource_id: str, domain: DomainRoute, upstreams: list[str]) -> dict[str, Any]:
    """The binding's entry: its host, its upstreams in every slot, and the failure tags."""
    route_id_ = domain_route_id(resource_id, domain.id)
    slots = [upstreams[i % len(upstreams)] for i in range(SLOTS)]
    return {
        "@id": route_id_,
        "input": domain.domain_name,
        "outputs": [*slots, resource_id, domain.id, route_id_],
    }


def entries(route: object) -> list[dict[str, Any]]:
    """The entries a map route (as Caddy holds it) has, or [] for anything else."""
    handle = route.get("handle") if isinstance(route, dict) else None
    first = handle[0] if isinstance(handle, list) and handle else None
    found = first.get("mappings") if isinstance(first, dict) else None
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


def shown(route: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The map route as Caddy holds it with only ``entry`` in it: what serves the binding,
    without the other resources' host names (which may be another tenant's)."""
    handle = [dict(h) for h in route.get("handle") or [] if isinstance(h, dict)]
    if handle:
        handle[0]["mappings"] = [entry]
    return {**route, "handle": handle}
