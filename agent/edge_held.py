"""The agent's copy of the routes it holds in Caddy, so a route change needs no full read."""

from typing import Any

from agent.edge_map import MAP_ENTRIES, MAP_ROUTE_ID, MAP_UPSTREAMS, entries, upstream_entries
from agent.edge_tls_map import (
    TLS_MAP_ENTRIES,
    TLS_MAP_UPSTREAMS,
    is_hosts_route,
    read_hosts_route,
)

# Where each host map's entries are held: map route id -> (host entries, upstream entries).
_MAPS = {MAP_ROUTE_ID: (MAP_ENTRIES, MAP_UPSTREAMS)}


class HeldRoutes:
    """Route id -> (server path, route JSON) for the ``@id`` routes of the edge's servers (and
    host map entry id -> (its map's entries path, e.g. ``MAP_ENTRIES``, entry JSON), the HTTPS
    host routes' names as entries at ``TLS_MAP_ENTRIES``), as the agent
    last read or wrote them, plus the edge settings that read was made under.

    Unknown until the first read (agent start) and again after ``forget`` (a call Caddy
    refused, or a route that differs from the copy: Caddy restarted or was edited by hand);
    the edge then reads Caddy's config once and works from the copy again.
    """

    def __init__(self) -> None:
        self._routes: dict[str, tuple[str, dict[str, Any]]] | None = None
        self._settings: object = None

    def known(self, settings: object) -> bool:
        """Whether the copy is usable: read since the last ``forget``, under ``settings``."""
        return self._routes is not None and self._settings == settings

    def load(self, servers: object, paths: dict[str, str], settings: object) -> None:
        """Take the copy from Caddy's ``apps/http/servers`` (``paths``: server name -> path)."""
        routes: dict[str, tuple[str, dict[str, Any]]] = {}
        for name, path in paths.items():
            server = servers.get(name) if isinstance(servers, dict) else None
            held = server.get("routes") if isinstance(server, dict) else None
            for route in held if isinstance(held, list) else []:
                if isinstance(route, dict) and isinstance(route.get("@id"), str):
                    routes[route["@id"]] = (path, route)
                paths_of_map = _MAPS.get(str(route.get("@id"))) if isinstance(route, dict) else None
                if paths_of_map is not None:
                    # A host map's entries are held like routes, at the map's path.
                    hosts_at, upstreams_at = paths_of_map
                    for at, found in ((hosts_at, entries), (upstreams_at, upstream_entries)):
                        for entry in found(route):
                            if isinstance(entry.get("@id"), str):
                                routes[entry["@id"]] = (at, entry)
                if isinstance(route, dict) and is_hosts_route(str(route.get("@id"))):
                    # An HTTPS host route's names are held as entries too, like the map's.
                    hosts, upstreams = read_hosts_route(route)
                    for entry in hosts:
                        routes[entry["@id"]] = (TLS_MAP_ENTRIES, entry)
                    if upstreams is not None:
                        routes[upstreams["@id"]] = (TLS_MAP_UPSTREAMS, upstreams)
        self._routes, self._settings = routes, settings

    def forget(self) -> None:
        """Drop the copy: the next change reads Caddy first."""
        self._routes = None

    def get(self, route_id: str) -> tuple[str, dict[str, Any]] | None:
        """The route's server path and JSON, or None when the agent holds no such route."""
        return (self._routes or {}).get(route_id)

    def on(self, route_id: str, server: str) -> bool:
        """Whether the route is held on ``server``."""
        held = self.get(route_id)
        return held is not None and held[0] == server

    def with_prefix(self, prefix: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """Every held route whose id starts with ``prefix``."""
        return {k: v for k, v in (self._routes or {}).items() if k.startswith(prefix)}

    def at(self, server: str) -> dict[str, dict[str, Any]]:
        """Every held route (or map entry) on ``server`` (or ``MAP_ENTRIES``), by id."""
        return {k: v[1] for k, v in (self._routes or {}).items() if v[0] == server}

    def put(self, server: str, route: dict[str, Any]) -> None:
        """Record a route just written to ``server``."""
        if self._routes is not None:
            self._routes[str(route["@id"])] = (server, route)

    def drop(self, route_id: str) -> None:
        """Record a route just deleted."""
        if self._routes is not None:
            _ = self._routes.pop(route_id, None)
