"""The host map: one route of the HTTP server dispatching the common bindings by host name.

A binding that only proxies a host name to its resource's containers (no path prefix, no
redirect, no ownership token) is not a route of its own but one entry of a Caddy 2.6
``http.handlers.map`` keyed on the request's host, naming the binding and its resource. A second
map, keyed on that resource, holds one entry per resource with its upstream dials, and one
``reverse_proxy`` whose upstreams are those placeholders serves every such host. Adding a
binding is one write of one small entry (by its ``@id``), a redeploy one write of the
resource's upstream entry, and a request finds its host without walking a route per binding.

Two maps rather than one entry carrying the dials: Caddy re-reads its whole config on every
admin write, and its time grows with the entries' size (a host entry of 2 outputs instead of 7
made a write at 1,000 bindings about a third faster, ``bench/README.md``).
"""

from typing import Any, Final

from agent.edge_routes import domain_route_id, proxy, route_id, tag
from shared.messages.deploy import DomainRoute

MAP_ROUTE_ID: Final = "berth-edge-map"
# Where the entries live: Caddy's admin API resolves the id, so the path holds wherever the
# route sits in the server's list (an entry has an ``@id`` of its own too).
MAP_ENTRIES: Final = f"/id/{MAP_ROUTE_ID}/handle/0/mappings"
MAP_UPSTREAMS: Final = f"/id/{MAP_ROUTE_ID}/handle/1/mappings"
# Upstream placeholders of the shared proxy. An upstream entry fills all of them, repeating
# its upstreams in order, so Caddy's random choice spreads evenly only when their count
# divides this: 1, 2 or 4 upstreams are mapped (blue-green's old and new container is 2),
# others keep a route of their own.
SLOTS: Final = 4
_UPSTREAMS = [f"{{berth.up{i}}}" for i in range(SLOTS)]
# A host entry's outputs: the failure pages' tags (the route id is made of the two).
_HOST_OUTPUTS = ["{berth.resource}", "{berth.binding}"]
# The same, looked up once per request and kept in request variables. Caddy's map finds an
# entry by comparing the input with each entry in turn, and evaluates its placeholder again
# at each use: read through the map, a request to a host in the middle of 1,000 entries paid
# six scans of 500 entries (the matcher, the tags, the chosen upstream), about 8 us of Caddy's
# CPU per request (bench/README.md).
_HOST_VARS = ["berth_map_resource", "berth_map_binding"]
_HOST_VALUES = [f"{{http.vars.{name}}}" for name in _HOST_VARS]
# An older agent's single map: the upstreams, then resource, binding and route per host.
_OLD_OUTPUTS = SLOTS + 3


def upstreams_entry_id(resource_id: str, suffix: str = "") -> str:
    """The ``@id`` of the resource's upstream entry: under its route id like its bindings
    (so it is removed with them), with a ``~`` no binding id may contain. ``suffix`` tells
    the HTTPS host routes' entry apart (both are held in the agent's one copy by id)."""
    return f"{route_id(resource_id)}.~upstreams{suffix}"


def map_route(
    mappings: list[Any] | None = None,
    upstreams: list[Any] | None = None,
    map_id: str = MAP_ROUTE_ID,
) -> dict[str, Any]:
    """The map route with host ``mappings`` and resource ``upstreams`` entries: not terminal,
    so a host it does not hold goes on to the routes after it (the fallback's 404 page)."""
    return {
        "@id": map_id,
        "handle": [
            {
                "handler": "map",
                "source": "{http.request.host}",
                "destinations": list(_HOST_OUTPUTS),
                "mappings": list(mappings or []),
                # An unknown host maps to "": so do its upstreams, and the proxy's matcher
                # below then does not match.
                "defaults": [""] * len(_HOST_OUTPUTS),
            },
            {
                "handler": "map",
                "source": _HOST_VALUES[0],
                "destinations": list(_UPSTREAMS),
                "mappings": list(upstreams or []),
                "defaults": [""] * SLOTS,
            },
            # Maps are read lazily: this is where the host entry is looked up, once.
            {"handler": "vars", **dict(zip(_HOST_VARS, _HOST_OUTPUTS, strict=True))},
            {
                "handler": "subroute",
                "routes": [
                    {
                        "match": [{"not": [{"vars": {_UPSTREAMS[0]: [""]}}]}],
                        "handle": [
                            tag(
                                _HOST_VALUES[0],
                                domain_route_id(*_HOST_VALUES),
                                _HOST_VALUES[1],
                            ),
                            proxy(_UPSTREAMS),
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


def map_entry(resource_id: str, domain: DomainRoute) -> dict[str, Any]:
    """The binding's host entry: its host, its resource and itself (the failure tags)."""
    return {
        "@id": domain_route_id(resource_id, domain.id),
        "input": domain.domain_name,
        "outputs": [resource_id, domain.id],
    }


def upstreams_entry(resource_id: str, upstreams: list[str], suffix: str = "") -> dict[str, Any]:
    """The resource's upstream entry: its upstreams repeated over every slot."""
    return {
        "@id": upstreams_entry_id(resource_id, suffix),
        "input": resource_id,
        "outputs": [upstreams[i % len(upstreams)] for i in range(SLOTS)],
    }


def _mappings(route: object, index: int) -> list[dict[str, Any]]:
    handle = route.get("handle") if isinstance(route, dict) else None
    found = handle[index] if isinstance(handle, list) and len(handle) > index else None
    if not isinstance(found, dict) or found.get("handler") != "map":
        return []
    mappings = found.get("mappings")
    return [e for e in mappings if isinstance(e, dict)] if isinstance(mappings, list) else []


def entries(route: object) -> list[dict[str, Any]]:
    """The host entries a map route (as Caddy holds it) has, or [] for anything else."""
    return _mappings(route, 0)


def upstream_entries(route: object) -> list[dict[str, Any]]:
    """The resource upstream entries a map route (as Caddy holds it) has."""
    return _mappings(route, 1)


def upgraded(route: object) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The host and upstream entries of a map route as Caddy holds it, an older agent's
    single map (each host entry carrying its dials) rewritten into this agent's two: nothing
    served is lost when the map route is replaced."""
    hosts: list[dict[str, Any]] = []
    ups: dict[str, dict[str, Any]] = {e["input"]: e for e in upstream_entries(route)}
    for entry in entries(route):
        outputs = entry.get("outputs")
        if not (isinstance(outputs, list) and len(outputs) == _OLD_OUTPUTS):
            hosts.append(entry)
            continue
        resource_id, binding_id = str(outputs[SLOTS]), str(outputs[SLOTS + 1])
        hosts.append({**entry, "outputs": [resource_id, binding_id]})
        ups.setdefault(resource_id, upstreams_entry(resource_id, list(outputs[:SLOTS])))
    return hosts, list(ups.values())


def shown(route: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The map route as Caddy holds it with only ``entry`` and its resource's upstreams in
    it: what serves the binding, without the other resources' host names (which may be
    another tenant's)."""
    handle = [dict(h) for h in route.get("handle") or [] if isinstance(h, dict)]
    outputs = entry.get("outputs")
    resource_id = outputs[0] if isinstance(outputs, list) and outputs else None
    if len(handle) > 1:
        handle[0]["mappings"] = [entry]
        handle[1]["mappings"] = [
            e for e in upstream_entries(route) if e.get("input") == resource_id
        ]
    return {**route, "handle": handle}
