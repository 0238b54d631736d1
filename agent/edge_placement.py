"""Where a domain binding goes in Caddy: an entry of a host map, or routes of its own."""

from typing import Any, Final

from agent.edge_map import MAP_ENTRIES, MAP_UPSTREAMS, map_entry, mappable
from agent.edge_routes import build_domain_route, build_https_redirect_route, domain_route_id
from agent.edge_setup import SERVER_PATH, TLS_SERVER_PATH
from agent.edge_tls import EdgeTls, listen_port
from agent.edge_tls_map import TLS_MAP_ENTRIES, TLS_MAP_UPSTREAMS, TLS_UPSTREAMS_SUFFIX
from shared.messages.deploy import DomainRoute

# Each host map, by where its host entries are: where its upstream entries are, their id suffix.
MAPS: Final = {
    MAP_ENTRIES: (MAP_UPSTREAMS, ""),
    TLS_MAP_ENTRIES: (TLS_MAP_UPSTREAMS, TLS_UPSTREAMS_SUFFIX),
}


def wanted_routes(
    resource_id: str,
    domain: DomainRoute,
    upstreams: list[str],
    mapped: dict[str, dict[str, str]],
    tls: EdgeTls | None,
) -> list[tuple[str, dict[str, Any]]]:
    """The binding as (where, JSON) pairs: a host map entry (``where`` a key of ``MAPS``) or
    routes (``where`` a server path). ``mapped`` is, per map, host -> entry id of what the
    map holds or this change puts there; a host taken goes to the binding first given it."""

    def maps_to(at: str) -> bool:
        # A host another binding holds in the map stays a route (the map refuses a
        # duplicate), tried after the map: the binding there first keeps it, as it would
        # as the earlier route.
        entry_id = domain_route_id(resource_id, domain.id)
        if not mappable(domain, upstreams):
            return False
        return mapped[at].setdefault(domain.domain_name, entry_id) == entry_id

    if tls is None or domain.tls_mode not in ("auto", "imported"):
        if maps_to(MAP_ENTRIES):
            return [(MAP_ENTRIES, map_entry(resource_id, domain))]
        return [(SERVER_PATH, build_domain_route(resource_id, domain, upstreams))]
    # HTTPS by default: the binding is served on the TLS server (Caddy obtains its certificate
    # because a route's host matcher names it, or serves the one Berth loaded for an imported
    # name) and HTTP redirects there. A managed name that only proxies is a name of its
    # resource's HTTPS host route, whose matcher names it (``agent/edge_tls_map.py``); on-demand
    # and certificate-only names stay routes (their certificates come another way).
    managed = domain.tls_mode == "auto" and not domain.on_demand and not domain.certificate_only
    if managed and maps_to(TLS_MAP_ENTRIES):
        return [(TLS_MAP_ENTRIES, map_entry(resource_id, domain))]
    route = build_domain_route(resource_id, domain, upstreams)
    https_port = listen_port(tls.listen, 443)
    return [
        (TLS_SERVER_PATH, route),
        (SERVER_PATH, build_https_redirect_route(resource_id, domain, https_port)),
    ]
