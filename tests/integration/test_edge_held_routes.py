"""A real Caddy behind the agent's edge: changes work from the agent's copy of its routes,
re-read Caddy when it restarted or was edited by hand, and always end up served."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.edge import CaddyEdge
from agent.edge_map import MAP_ENTRIES, MAP_ROUTE_ID, SLOTS, entries, upstreams_entry_id
from agent.edge_routes import FALLBACK_ROUTE_ID, domain_route_id, route_id
from agent.edge_setup import SERVERS_PATH
from agent.edge_tls import EdgeTls
from shared.messages.deploy import DomainRoute
from tests.edge_proxy import Caddy, free_port
from tests.harness import eventually

HOST = "held.prod.demo.localhost"


def binding(n: int) -> DomainRoute:
    return DomainRoute(id=f"dbd_{n}", domain_name=f"d{n}.example.test", tls_mode="disabled")


class Upstream:
    """An app answering its own name, so a test sees which upstream Caddy proxied to."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def dial(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        async def answer(_: web.Request) -> web.Response:
            return web.Response(text=self.name)

        app = web.Application()
        app.router.add_get("/", answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class CountingEdge(CaddyEdge):
    """The agent's edge, recording each admin call it makes (method and path)."""

    def __init__(self, admin_url: str, listen: str, tls: EdgeTls | None = None) -> None:
        super().__init__(admin_url, listen, tls)
        self.calls: list[tuple[str, str]] = []

    async def _call(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        self.calls.append((method, path))
        return await super()._call(method, path, body, missing_ok=missing_ok)

    async def _edit(self, path: str, edit: Callable[[Any], Any]) -> None:
        # A read of ``path`` and a write of it, with no other call of the agent's between.
        self.calls.extend([("GET", path), ("PATCH", path)])
        await super()._edit(path, edit)


@pytest.fixture
async def apps() -> AsyncIterator[tuple[Upstream, Upstream]]:
    first, second = Upstream("first"), Upstream("second")
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.stop()
        await second.stop()


async def served_by(caddy: Caddy, host: str, name: str) -> None:
    async def answers() -> bool:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{caddy.http_port}/", headers={"Host": host}) as r,
            ):
                return r.status == 200 and await r.text() == name
        except aiohttp.ClientError:
            return False

    await eventually(answers, timeout=15, what=f"{host} served by {name}")


async def admin(caddy: Caddy, method: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, caddy.admin_url + path, json=body, headers={"Origin": caddy.admin_url}
        ) as r,
    ):
        assert r.status == 200, await r.text()
        return await r.json() if method == "GET" else None


async def started_edge(caddy: Caddy) -> CountingEdge:
    edge = CountingEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}")

    async def installed() -> bool:
        try:
            # The failure pages' fallback route: new routes go in front of it.
            await edge.install_failure_pages(f"127.0.0.1:{free_port()}")
        except Exception:
            return False
        return True

    await eventually(installed, timeout=15, what="Caddy's admin API")
    return edge


def full_reads(calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Reads of the whole config or of a server's whole route list."""
    return [(m, p) for m, p in calls if m == "GET" and (p.startswith("/config") or "/routes" in p)]


async def test_a_change_writes_once_without_reading_caddys_config(
    caddy: Caddy, apps: tuple[Upstream, Upstream]
) -> None:
    first, second = apps
    edge = await started_edge(caddy)
    try:
        await edge.set_upstreams("res_held", [HOST], "/", [first.dial], [binding(1)])
        await served_by(caddy, HOST, "first")
        await served_by(caddy, "d1.example.test", "first")

        edge.calls.clear()
        await edge.set_upstreams("res_held", [HOST], "/", [first.dial], [binding(1), binding(2)])
        # One small read of the resource's own route, one entry appended to the host map.
        assert edge.calls == [
            ("GET", f"/id/{route_id('res_held')}"),
            ("POST", MAP_ENTRIES),
        ]
        await served_by(caddy, "d2.example.test", "first")

        edge.calls.clear()
        await edge.set_upstreams("res_held", [HOST], "/", [second.dial], [binding(1), binding(2)])
        # The resource's route and its one upstream entry in the host map (both bindings are
        # served through it): two changes, one write of the servers, read just before it
        # (under the agent's admin queue) and nothing else read.
        assert [c for c in edge.calls if c[0] != "GET"] == [("PATCH", SERVERS_PATH)]
        assert full_reads(edge.calls) == [("GET", SERVERS_PATH)]
        for host in (HOST, "d1.example.test", "d2.example.test"):
            await served_by(caddy, host, "second")

        # Nothing changed: nothing written.
        edge.calls.clear()
        await edge.set_upstreams("res_held", [HOST], "/", [second.dial], [binding(1), binding(2)])
        assert edge.calls == [("GET", f"/id/{route_id('res_held')}")]

        edge.calls.clear()
        await edge.set_upstreams("res_held", [HOST], "/", [second.dial], [binding(2)])
        assert edge.calls == [
            ("GET", f"/id/{route_id('res_held')}"),
            ("DELETE", f"/id/{domain_route_id('res_held', 'dbd_1')}"),
        ]
        routes = await admin(caddy, "GET", "/config/apps/http/servers/berth/routes")
        assert [r["@id"] for r in routes] == [MAP_ROUTE_ID, route_id("res_held"), FALLBACK_ROUTE_ID]
        assert [e["@id"] for e in entries(routes[0])] == [domain_route_id("res_held", "dbd_2")]
    finally:
        await edge.close()


async def test_a_change_after_caddy_restarted_empty_resyncs_and_serves(
    caddy: Caddy, apps: tuple[Upstream, Upstream]
) -> None:
    first, second = apps
    edge = await started_edge(caddy)
    try:
        await edge.set_upstreams("res_held", [HOST], "/", [first.dial], [binding(1)])
        await edge.set_upstreams("res_other", ["other.localhost"], "/", [first.dial])
        await served_by(caddy, "d1.example.test", "first")

        caddy.stop()
        caddy.start()  # its config file holds only the admin listener

        async def changed() -> bool:
            try:
                await edge.set_upstreams(
                    "res_held", [HOST], "/", [second.dial], [binding(1), binding(2)]
                )
            except Exception:
                return False  # the admin API not up yet
            return True

        await eventually(changed, timeout=15, what="the change after Caddy's restart")
        for host in (HOST, "d1.example.test", "d2.example.test"):
            await served_by(caddy, host, "second")
        routes = await admin(caddy, "GET", "/config/apps/http/servers/berth/routes")
        # The server was rebuilt with its fallback last; the other resource comes back when
        # the agent routes it again (its periodic check sees it missing).
        assert routes[-1]["@id"] == FALLBACK_ROUTE_ID
        assert route_id("res_other") not in [r["@id"] for r in routes]
        await edge.set_upstreams("res_other", ["other.localhost"], "/", [first.dial])
        await served_by(caddy, "other.localhost", "first")
        # Working from the copy again: the next change (its route and upstreams, one write)
        # reads nothing whole but the servers its write replaces.
        edge.calls.clear()
        await edge.set_upstreams("res_held", [HOST], "/", [first.dial], [binding(1), binding(2)])
        assert full_reads(edge.calls) == [("GET", SERVERS_PATH)]
        assert ("GET", "/config/") not in edge.calls
        await served_by(caddy, "d2.example.test", "first")
    finally:
        await edge.close()


async def test_a_route_edited_by_hand_is_repaired(
    caddy: Caddy, apps: tuple[Upstream, Upstream]
) -> None:
    first, second = apps
    edge = await started_edge(caddy)
    try:
        await edge.set_upstreams("res_held", [HOST], "/", [first.dial], [binding(1)])
        await served_by(caddy, HOST, "first")
        own = f"/id/{route_id('res_held')}"
        domain = f"/id/{domain_route_id('res_held', 'dbd_1')}"

        # The resource's own route edited out of band: the next set_upstreams (what the
        # agent's periodic check calls when the upstreams differ) sees it and repairs it,
        # reading Caddy's config again because it no longer matches the agent's copy.
        route = await admin(caddy, "GET", own)
        route["handle"][-1]["upstreams"] = [{"dial": second.dial}]
        await admin(caddy, "PATCH", own, route)
        await served_by(caddy, HOST, "second")
        edge.calls.clear()
        await edge.set_upstreams("res_held", [HOST], "/", [first.dial], [binding(1)])
        assert full_reads(edge.calls) != []
        await served_by(caddy, HOST, "first")

        # A host map entry (here the resource's upstreams, which its binding's host uses)
        # edited out of band is repaired by the next re-read: an edge bootstrap
        # (ensure_server), which then lets the next change compare against it.
        upstreams = f"/id/{upstreams_entry_id('res_held')}"
        entry = await admin(caddy, "GET", upstreams)
        entry["outputs"] = [second.dial] * SLOTS
        await admin(caddy, "PATCH", upstreams, entry)
        await served_by(caddy, "d1.example.test", "second")
        await edge.ensure_server()
        await edge.set_upstreams("res_held", [HOST], "/", [first.dial], [binding(1)])
        await served_by(caddy, "d1.example.test", "first")

        # An entry deleted by hand (the resource's upstreams): a redeploy's write to it is
        # refused (404 for its id), the agent re-reads and redoes the change, which adds it
        # again.
        await admin(caddy, "DELETE", upstreams)
        edge.calls.clear()
        await edge.set_upstreams("res_held", [HOST], "/", [second.dial], [binding(1)])
        assert ("GET", "/config/") in edge.calls
        await served_by(caddy, "d1.example.test", "second")
        await served_by(caddy, HOST, "second")

        # The binding's host entry deleted by hand: a redeploy does not write it (the
        # upstreams serve every host), so the next re-read (a bootstrap) puts it back.
        await admin(caddy, "DELETE", domain)
        await edge.ensure_server()
        await edge.set_upstreams("res_held", [HOST], "/", [second.dial], [binding(1)])
        await served_by(caddy, "d1.example.test", "second")
    finally:
        await edge.close()
