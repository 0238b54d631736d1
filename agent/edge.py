"""The edge proxy: a resource's routes in Caddy, changed one by one through its admin API."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from agent.edge_admin import AdminCall, admin_call, admin_edit
from agent.edge_ask import OnDemandAsk
from agent.edge_batch import AdminBatch
from agent.edge_held import HeldRoutes
from agent.edge_inspect import Served, inspect_routes
from agent.edge_map import (
    upstreams_entry,
    upstreams_entry_id,
)
from agent.edge_map_write import (
    drop_upstreams,
    put_upstreams,
    record_tls_changes,
    write_entries,
    write_tls_map,
)
from agent.edge_placement import MAPS, wanted_routes
from agent.edge_routes import (
    build_route,
    domain_route_id,
    fallback_route,
    route_id,
)
from agent.edge_setup import (
    FALLBACKS,
    SERVER_NAME,
    SERVER_PATH,
    TLS_SERVER_PATH,
    EdgeWanted,
    ensure_servers,
)
from agent.edge_tls import TLS_SERVER_NAME, EdgeTls
from agent.edge_tls_map import (
    TLS_MAP_ENTRIES,
    TLS_MAP_UPSTREAMS,
    HostIndex,
    hosts_route_id,
    unread,
)
from agent.settings import DEFAULT_EDGE_ADMIN_URL, DEFAULT_EDGE_LISTEN
from shared.errors import RuntimeFailed
from shared.messages.deploy import DomainRoute
from shared.messages.edge import EdgeSettings


class CaddyEdge:
    """Caddy's admin API at ``admin_url``; deployed apps are served on ``listen``.

    Both come from ``AgentSettings`` (``BERTH_AGENT_EDGE_ADMIN_URL``, ``BERTH_AGENT_EDGE_LISTEN``).
    """

    def __init__(
        self,
        admin_url: str = DEFAULT_EDGE_ADMIN_URL,
        listen: str = DEFAULT_EDGE_LISTEN,
        tls: EdgeTls | None = None,
    ) -> None:
        self._admin = admin_url.rstrip("/")
        self._listen = listen
        self._tls = tls
        # Where Caddy sends requests it cannot serve (the agent's failure pages); "" = none.
        self._failure_dial = ""
        self._http3 = False
        self._ensure_lock = asyncio.Lock()
        # Host names each resource has on the HTTPS server: what on-demand TLS's ask allows.
        self._https_hosts: dict[str, frozenset[str]] = {}
        # Their union, rebuilt on each change: the ask is a set look-up, whatever the count.
        self._allowed: frozenset[str] = frozenset()
        # Parents of the generated default-access names: Caddy's on-demand policy covers
        # their direct subdomains (grows only; an unused one allows nothing the ask refuses).
        self._on_demand_bases: set[str] = set()
        self._ask = OnDemandAsk(self.routes_https)
        # Names each resource serves on HTTPS with a certificate Berth loads (imported, or a
        # DNS-01 wildcard): Caddy must never order one for them (automatic_https
        # skip_certificates), yet serve them on the TLS server with what it holds.
        self._held_names: dict[str, frozenset[str]] = {}
        self._skipping: frozenset[str] = frozenset()
        # The routes the agent holds in Caddy, so a change writes without reading them first.
        self._held = HeldRoutes()
        # One change at a time: each works from the copy above and updates it.
        self._changing = asyncio.Lock()
        # The HTTPS host routes' names, for the failure pages (taken from the copy).
        self._host_bindings = HostIndex()
        # Resources with names read back from Caddy whose binding is not learnt again yet.
        self._unread: frozenset[str] = frozenset()

    def host_binding(self, hostname: str) -> tuple[str, str] | None:
        """The resource and binding an HTTPS host route serves ``hostname`` for, if any."""
        return self._host_bindings.binding(hostname)

    def bindings_known(self, resource_id: str) -> bool:
        """Whether no name of the resource's HTTPS host route is unread (read back from Caddy
        after a restart, its binding not learnt again yet)."""
        return resource_id not in self._unread

    def _index_hosts(self) -> None:
        entries = self._held.at(TLS_MAP_ENTRIES).values()
        self._host_bindings.rebuild(entries)
        self._unread = frozenset(str(e["outputs"][0]) for e in entries if unread(e))

    def routes_https(self, hostname: str) -> bool:
        """Whether a route of Berth's serves ``hostname`` on the HTTPS server (the ask check)."""
        return hostname in self._allowed

    def _set_https_hosts(self, resource_id: str, hosts: frozenset[str] | None) -> None:
        """Record the resource's HTTPS host names (None: it has none any more)."""
        if hosts is None:
            _ = self._https_hosts.pop(resource_id, None)
        else:
            self._https_hosts[resource_id] = hosts
        self._allowed = frozenset().union(*self._https_hosts.values())

    async def close(self) -> None:
        """Stop the ask endpoint."""
        await self._ask.stop()

    async def configure(self, settings: EdgeSettings) -> None:
        """Apply the settings the coordinator pushed (listen addresses, HTTP/3, ACME email)
        over the agent's own; each part changes only the config keys it names."""
        if settings.listen:
            self._listen = settings.listen
        if settings.tls_listen:
            self._tls = (
                replace(self._tls, listen=settings.tls_listen)
                if self._tls is not None
                else EdgeTls(settings.tls_listen)
            )
        if settings.acme_email is not None and self._tls is not None:
            self._tls = replace(self._tls, email=settings.acme_email)
        self._http3 = settings.http3
        await self.ensure_server()

    @property
    def listen(self) -> str:
        """Where deployed apps are served over HTTP."""
        return self._listen

    @property
    def tls_listen(self) -> str | None:
        """Where bound domains are served over HTTPS (None: HTTPS off)."""
        return self._tls.listen if self._tls is not None else None

    async def inspect(self, resource_id: str) -> list[Served]:
        """The resource's routes as Caddy holds them: (``http``/``https``, id, JSON)."""
        return await inspect_routes(self._call, resource_id, self.host_binding)

    async def install_failure_pages(self, dial: str) -> None:
        """Send every failed request on the edge's servers to the failure pages at ``dial``."""
        self._failure_dial = dial
        await self.ensure_server()

    async def _call(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        return await admin_call(self._admin, method, path, body, missing_ok=missing_ok)

    async def _edit(self, path: str, edit: Callable[[Any], Any]) -> None:
        await admin_edit(self._admin, path, edit)

    async def ensure_server(self) -> None:
        """Create ``apps.http.servers.berth`` (and the parents that are missing), then read
        the routes the edge's servers hold (the copy changes work from)."""
        async with self._changing:
            await self._resync()

    def _settings_key(self) -> object:
        # What ensure_server writes depends on these: a change of any needs a pass.
        return (
            self._listen,
            self._tls,
            self._http3,
            self._failure_dial,
            frozenset(self._on_demand_bases),
        )

    async def _resync(self) -> None:
        # One at a time: two concurrent passes would both add the fallback route.
        async with self._ensure_lock:
            self._held.forget()
            await self._ensure_server()
            servers = await self._call("GET", "/config/apps/http/servers", missing_ok=True)
            paths = {SERVER_NAME: SERVER_PATH, TLS_SERVER_NAME: TLS_SERVER_PATH}
            self._held.load(servers, paths, self._settings_key())
            self._index_hosts()

    async def _ready(self) -> None:
        """Read Caddy's config (and put the servers in place) unless the copy is current."""
        if not self._held.known(self._settings_key()):
            await self._resync()

    async def _ensure_server(self) -> None:
        if self._tls is not None:
            await self._ask.start()
        wanted = EdgeWanted(
            self._listen,
            self._tls,
            self._http3,
            self._failure_dial,
            self._ask.url,
            frozenset(self._on_demand_bases),
        )
        await ensure_servers(self._call, wanted, self._ask.form)

    async def _add_routes(self, call: AdminCall, server: str, routes: list[dict[str, Any]]) -> None:
        """Add several routes at once: Caddy appends an array POSTed to ``.../routes/...``;
        the fallback moves behind them."""
        if len(routes) == 1:
            await self._add_route(call, server, routes[0])
            return
        tail: list[dict[str, Any]] = []
        fallback = FALLBACKS[server]
        if self._held.on(fallback, server):
            await call("DELETE", f"/id/{fallback}")
            self._held.drop(fallback)
            tail = [fallback_route(fallback)]
        await call("POST", f"{server}/routes/...", [*routes, *tail])
        for route in [*routes, *tail]:
            self._held.put(server, route)

    async def _add_route(self, call: AdminCall, server: str, route: dict[str, Any]) -> None:
        """Add a route at the end of ``server``'s routes, but before the fallback route."""
        fallback = FALLBACKS[server]
        if self._held.on(fallback, server):
            # PUT at the fallback's path (its id resolves to its index) inserts there: the
            # fallback moves one down, wherever it is, without reading the route list.
            await call("PUT", f"/id/{fallback}", route)
        else:
            await call("POST", f"{server}/routes", route)
        self._held.put(server, route)

    async def set_upstreams(
        self,
        resource_id: str,
        hostnames: list[str],
        path_prefix: str,
        upstreams: list[str],
        domains: Sequence[DomainRoute] = (),
    ) -> None:
        """Create or replace the resource's routes, each by its id; Caddy swaps gracefully.

        A route Caddy already holds as wanted is not written again, and the writes a change
        needs go to Caddy as one (``AdminBatch``): each write makes Caddy re-provision its whole
        config, so a change costs one write, not one per binding or per route it touches.
        What Caddy holds comes from the agent's copy (``HeldRoutes``), checked against one read
        of the resource's own route: a difference there (Caddy restarted, or the route was
        edited by hand) or a write Caddy refuses makes the agent read the whole config again
        and redo the change from it, once.
        """
        async with self._changing:
            if self._held.known(self._settings_key()):
                own = route_id(resource_id)
                observed = await self._call("GET", f"/id/{own}", missing_ok=True)
                copy = self._held.get(own)
                if observed != (copy[1] if copy is not None else None):
                    self._held.forget()
            route = build_route(resource_id, hostnames, path_prefix, upstreams)
            await self._retrying(lambda: self._set_routes(resource_id, route, domains, upstreams))

    async def _retrying(self, change: Callable[[], Awaitable[None]]) -> None:
        """Run ``change`` from the copy; if Caddy refuses a call, read everything and rerun."""
        fresh = not self._held.known(self._settings_key())
        try:
            await change()
        except RuntimeFailed:
            if fresh:
                raise  # it worked from what Caddy holds now: a real refusal
            self._held.forget()
            await change()

    async def _set_routes(
        self,
        resource_id: str,
        route: dict[str, Any],
        domains: Sequence[DomainRoute],
        upstreams: list[str],
    ) -> None:
        await self._ready()
        await self._set_domain_routes(resource_id, route, domains, upstreams)

    def _domain_routes(self, resource_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """The resource's domain routes in Caddy: route id -> (server path, route JSON)."""
        return self._held.with_prefix(domain_route_id(resource_id, ""))

    async def _set_domain_routes(
        self,
        resource_id: str,
        route: dict[str, Any],
        domains: Sequence[DomainRoute],
        upstreams: list[str],
    ) -> None:
        on_tls = [d for d in domains if self._tls is not None and d.tls_mode == "auto"]
        https = frozenset(d.domain_name for d in on_tls if not d.certificate_only)
        # Allowed before the routes are written (a first request may come at once), narrowed
        # to what is wanted once the stale ones are gone.
        self._set_https_hosts(resource_id, self._https_hosts.get(resource_id, frozenset()) | https)
        # A certificate-only name is under the on-demand policy too (so Caddy orders nothing
        # when its route is added) but the ask never allows it: only a held certificate serves.
        self._on_demand_bases.update(d.domain_name.partition(".")[2] for d in on_tls if d.on_demand)
        # A new on-demand base changes the settings: this also puts the on-demand policy in
        # place before a route names a host under it.
        await self._ready()
        loaded = frozenset(
            d.domain_name for d in domains if self._tls is not None and d.tls_mode == "imported"
        )
        # Before the routes: a route naming a host Caddy does not skip yet is an ACME order.
        await self._set_held_names(resource_id, loaded | self._held_names.get(resource_id, loaded))
        batch = AdminBatch(self._call, self._edit)
        call = batch.call
        held_own = self._held.get(route["@id"])
        if held_own is None:
            await self._add_route(call, SERVER_PATH, route)
        elif held_own[1] != route:
            await call("PATCH", f"/id/{route['@id']}", route)
            self._held.put(SERVER_PATH, route)
        present = self._domain_routes(resource_id)
        # Per map, host -> entry id of its entries (one pass over the copy per change). The
        # resource's own names read back without their binding (after a restart) hold no
        # host: they are these bindings, and give way to them.
        mapped = {
            at: {
                str(e.get("input")): k
                for k, e in self._held.at(at).items()
                if not (unread(e) and e["outputs"][0] == resource_id)
            }
            for at in MAPS
        }
        wanted: set[str] = set()
        in_maps: set[str] = set()  # the maps where a binding of the resource is an entry
        appended: dict[str, list[dict[str, Any]]] = {}
        changed: dict[str, list[dict[str, Any]]] = {at: [] for at in MAPS}  # to replace
        for domain in domains:
            for server, bound in wanted_routes(resource_id, domain, upstreams, mapped, self._tls):
                wanted.add(bound["@id"])
                if server in MAPS:
                    in_maps.add(server)
                held = present.get(bound["@id"])
                if held is not None and held[0] == server:
                    if held[1] != bound and server in MAPS:
                        changed[server].append(bound)  # written with the others, below
                    elif held[1] != bound:
                        await call("PATCH", f"/id/{bound['@id']}", bound)
                        self._held.put(server, bound)
                    continue
                if bound["@id"] in present:  # moved between HTTP, HTTPS and the host map
                    await call("DELETE", f"/id/{bound['@id']}", missing_ok=True)
                    self._held.drop(bound["@id"])
                if domain.path_prefix not in ("", "/") and server not in MAPS:
                    # Caddy tries routes in order: a path under a host must come before the
                    # host's catch-all route, so it goes first (PUT at an index inserts).
                    await call("PUT", f"{server}/routes/0", bound)
                    self._held.put(server, bound)
                else:
                    appended.setdefault(server, []).append(bound)
        for server, routes in appended.items():
            if server not in MAPS:
                await self._add_routes(call, server, routes)
        # Not the resource's bindings: its map upstream entries and its HTTPS host route,
        # which ``write_tls_map`` keeps equal to its entries.
        kept = {upstreams_entry_id(resource_id, suffix) for _, suffix in MAPS.values()}
        kept.add(hosts_route_id(resource_id))
        stale = sorted(set(present) - wanted - kept)
        for route_id_ in stale:
            if present[route_id_][0] not in MAPS:
                await call("DELETE", f"/id/{route_id_}", missing_ok=True)
                self._held.drop(route_id_)
        for at, (upstreams_at, suffix) in MAPS.items():
            map_stale = [k for k in stale if present[k][0] == at]
            entry = upstreams_entry(resource_id, upstreams, suffix) if at in in_maps else None
            entry_id = upstreams_entry_id(resource_id, suffix)
            added = appended.get(at, [])
            if at == TLS_MAP_ENTRIES:
                # Written whole, once, below, with the matcher naming its hosts.
                record_tls_changes(self._held, changed[at], added, map_stale, entry, entry_id)
                continue
            # The resource's upstream entry while any of its bindings is in the map: written
            # before the hosts that use it, removed after the last of them.
            if entry is not None:
                await put_upstreams(call, self._held, entry, upstreams_at)
            await write_entries(call, self._held, at, changed[at], added, map_stale)
            if entry is None:
                await drop_upstreams(call, self._held, entry_id)
        await write_tls_map(call, self._held)
        await batch.flush()
        self._index_hosts()
        self._set_https_hosts(resource_id, https)
        await self._set_held_names(resource_id, loaded)

    async def _set_held_names(self, resource_id: str, names: frozenset[str]) -> None:
        """Record ``resource_id``'s names served with a loaded certificate and keep the TLS
        server's ``skip_certificates`` equal to the union (written only when it changes)."""
        if names:
            self._held_names[resource_id] = names
        else:
            _ = self._held_names.pop(resource_id, None)
        union = frozenset().union(*self._held_names.values())
        if union == self._skipping or self._tls is None:
            return
        path = f"{TLS_SERVER_PATH}/automatic_https"
        current = await self._call("GET", path, missing_ok=True)
        wanted = sorted(union)
        if isinstance(current, dict) and "skip_certificates" in current:
            await self._call("PATCH", f"{path}/skip_certificates", wanted)
        elif isinstance(current, dict):
            await self._call("POST", f"{path}/skip_certificates", wanted)
        else:
            await self._call("POST", path, {"disable_redirects": True, "skip_certificates": wanted})
        self._skipping = union

    async def remove_route(self, resource_id: str) -> None:
        """Delete the resource's route and its domain bindings' routes."""
        async with self._changing:
            await self._ready()
            batch = AdminBatch(self._call, self._edit)
            # A route missing already is gone as wanted: deleting by id needs no retry.
            for stale in [route_id(resource_id), *sorted(self._domain_routes(resource_id))]:
                held = self._held.get(stale)
                if held is None or held[0] not in (TLS_MAP_ENTRIES, TLS_MAP_UPSTREAMS):
                    await batch.call("DELETE", f"/id/{stale}", missing_ok=True)
                self._held.drop(stale)
            # Its HTTPS host route went with its routes; the redirects' names follow.
            await write_tls_map(batch.call, self._held)
            await batch.flush()
            self._index_hosts()
        # The ask must stop allowing its names at once: Caddy would otherwise still order a
        # certificate for a name nothing here routes any more.
        self._set_https_hosts(resource_id, None)
        await self._set_held_names(resource_id, frozenset())

    async def current_upstreams(self, resource_id: str) -> list[str] | None:
        """Read back the upstreams Caddy routes the resource to."""
        route = await self._call("GET", f"/id/{route_id(resource_id)}", missing_ok=True)
        if not isinstance(route, dict):
            return None
        found: list[str] = []
        for handler in route.get("handle") or []:
            for upstream in handler.get("upstreams") or []:
                if isinstance(upstream, dict) and isinstance(upstream.get("dial"), str):
                    found.append(upstream["dial"])
        return found
