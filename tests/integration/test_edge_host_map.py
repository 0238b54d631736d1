"""A real Caddy behind the agent's edge: bindings that only proxy a host are entries of one host
map, served like routes (several upstreams, failure pages naming them, the preview's JSON)."""

from collections.abc import AsyncIterator

import aiohttp
import pytest

from agent.access_failures import AccessFailures
from agent.edge_map import (
    MAP_ROUTE_ID,
    entries,
    upstream_entries,
    upstreams_entry_id,
)
from agent.edge_routes import FALLBACK_ROUTE_ID, domain_route_id, route_id
from agent.edge_setup import SERVERS_PATH
from shared.messages.deploy import DomainRoute
from tests.edge_proxy import Caddy, free_port
from tests.harness import eventually
from tests.integration.test_edge_held_routes import CountingEdge, Upstream, admin, served_by

HOST = "map.prod.demo.localhost"


def binding(n: int, **extra: object) -> DomainRoute:
    return DomainRoute.model_validate(
        {"id": f"dbd_{n}", "domain_name": f"m{n}.example.test", "tls_mode": "disabled", **extra}
    )


@pytest.fixture
async def apps() -> AsyncIterator[list[Upstream]]:
    started = [Upstream(name) for name in ("first", "second", "third")]
    for app in started:
        await app.start()
    try:
        yield started
    finally:
        for app in started:
            await app.stop()


@pytest.fixture
async def edge(caddy: Caddy) -> AsyncIterator[tuple[CountingEdge, AccessFailures]]:
    pages = AccessFailures()
    dial = await pages.start()
    edge = CountingEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}")

    async def installed() -> bool:
        try:
            await edge.install_failure_pages(dial)
        except Exception:
            return False  # the admin API not up yet
        return True

    await eventually(installed, timeout=15, what="Caddy's admin API")
    try:
        yield edge, pages
    finally:
        await edge.close()
        await pages.stop()


async def get(caddy: Caddy, host: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{caddy.http_port}/", headers={"Host": host}) as r,
    ):
        return r.status, await r.text()


async def test_mapped_bindings_are_served_and_unknown_hosts_fall_through(
    caddy: Caddy, apps: list[Upstream], edge: tuple[CountingEdge, AccessFailures]
) -> None:
    first, second, third = apps
    counting, pages = edge
    await counting.set_upstreams("res_a", [HOST], "/", [first.dial], [binding(1), binding(2)])
    await counting.set_upstreams("res_b", ["b.localhost"], "/", [second.dial], [binding(3)])
    for host, name in (("m1.example.test", "first"), ("m3.example.test", "second")):
        await served_by(caddy, host, name)
    routes = await admin(caddy, "GET", "/config/apps/http/servers/berth/routes")
    assert [r["@id"] for r in routes] == [
        MAP_ROUTE_ID,
        route_id("res_a"),
        route_id("res_b"),
        FALLBACK_ROUTE_ID,
    ]
    assert [e["input"] for e in entries(routes[0])] == [
        "m1.example.test",
        "m2.example.test",
        "m3.example.test",
    ]
    # A redeploy moving a resource with several mapped bindings: its route and its upstream
    # entry, which all its hosts use, in ONE write of the servers (Caddy re-provisions
    # everything on each write).
    counting.calls.clear()
    await counting.set_upstreams("res_a", [HOST], "/", [third.dial], [binding(1), binding(2)])
    assert [c for c in counting.calls if c[0] != "GET"] == [("PATCH", SERVERS_PATH)]
    for host in ("m1.example.test", "m2.example.test"):
        await served_by(caddy, host, "third")
    await served_by(caddy, "m3.example.test", "second")  # the other resource's entry kept
    await counting.set_upstreams("res_a", [HOST], "/", [first.dial], [binding(1), binding(2)])
    await served_by(caddy, "m1.example.test", "first")

    # A host the map does not hold goes on to the fallback: the 404 page, no resource named.
    status, page = await get(caddy, "nobody.example.test")
    assert status == 404
    assert "nobody.example.test" in page

    # Blue-green: two upstreams for a moment, both served, still one write.
    counting.calls.clear()
    await counting.set_upstreams(
        "res_b", ["b.localhost"], "/", [second.dial, third.dial], [binding(3)]
    )
    assert [c for c in counting.calls if c[0] != "GET"] == [("PATCH", SERVERS_PATH)]
    seen: set[str] = set()

    async def both() -> bool:
        seen.add((await get(caddy, "m3.example.test"))[1])
        return {"second", "third"} <= seen

    await eventually(both, timeout=15, what="both upstreams of the mapped binding")
    assert seen == {"second", "third"}

    # Three upstreams do not spread evenly over the map's four slots: a route of its own,
    # and back into the map at two.
    three = [first.dial, second.dial, third.dial]
    await counting.set_upstreams("res_b", ["b.localhost"], "/", three, [binding(3)])
    held = await admin(caddy, "GET", f"/id/{domain_route_id('res_b', 'dbd_3')}")
    assert [u["dial"] for u in held["handle"][1]["routes"][-1]["handle"][0]["upstreams"]] == three
    # Its upstream entry went with its last mapped host (in the same write: no request ever
    # sees the host mapped without its upstreams).
    held_map = await admin(caddy, "GET", f"/id/{MAP_ROUTE_ID}")
    assert [e["input"] for e in upstream_entries(held_map)] == ["res_a"]
    assert "m3.example.test" not in [e["input"] for e in entries(held_map)]
    counting.calls.clear()
    await counting.set_upstreams("res_b", ["b.localhost"], "/", [third.dial], [binding(3)])
    # Back in the map: its route out, its upstreams and its host in, one write.
    assert [c for c in counting.calls if c[0] != "GET"] == [("PATCH", SERVERS_PATH)]
    held_map = await admin(caddy, "GET", f"/id/{MAP_ROUTE_ID}")
    assert [e["input"] for e in upstream_entries(held_map)] == ["res_a", "res_b"]
    await served_by(caddy, "m3.example.test", "third")

    # A redirect is a route before the map; made a proxy again, it moves back to the map.
    redirect = binding(2, redirect_to="m1.example.test", redirect_status=308)
    await counting.set_upstreams("res_a", [HOST], "/", [first.dial], [binding(1), redirect])
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{caddy.http_port}/x?y=1",
            headers={"Host": "m2.example.test"},
            allow_redirects=False,
        ) as r,
    ):
        assert (r.status, r.headers["Location"]) == (308, "http://m1.example.test/x?y=1")
    await counting.set_upstreams("res_a", [HOST], "/", [first.dial], [binding(1), binding(2)])
    await served_by(caddy, "m2.example.test", "first")
    mapped = entries(await admin(caddy, "GET", f"/id/{MAP_ROUTE_ID}"))
    assert sorted(e["@id"] for e in mapped) == sorted(
        domain_route_id(r, b)
        for r, b in (("res_a", "dbd_1"), ("res_a", "dbd_2"), ("res_b", "dbd_3"))
    )
    # Nothing above failed but the unknown host's request.
    assert [f.hostname for f in pages.ring] == ["nobody.example.test"]


async def test_a_mapped_bindings_failure_page_names_it_and_inspect_shows_its_entry_alone(
    caddy: Caddy, apps: list[Upstream], edge: tuple[CountingEdge, AccessFailures]
) -> None:
    first = apps[0]
    counting, pages = edge
    gone = f"127.0.0.1:{free_port()}"  # nothing listens: the proxy's dial is refused
    await counting.set_upstreams("res_down", ["down.localhost"], "/", [gone], [binding(7)])
    await counting.set_upstreams("res_up", ["up.localhost"], "/", [first.dial], [binding(8)])

    async def failing() -> bool:
        return (await get(caddy, "m7.example.test"))[0] == 502

    await eventually(failing, timeout=15, what="the mapped binding's 502 page")
    failure = next(f for f in pages.ring if f.hostname == "m7.example.test")
    assert (failure.code, failure.resource_id, failure.domain_binding_id, failure.route_id) == (
        "resource_access_upstream_unavailable",
        "res_down",
        "dbd_7",
        domain_route_id("res_down", "dbd_7"),
    )

    # The preview's JSON for the binding is the map route as Caddy holds it, with the
    # binding's entry alone: no other resource's host name.
    found = await counting.inspect("res_down")
    by_id = {rid: (kind, config) for kind, rid, config in found}
    assert sorted(by_id) == [route_id("res_down"), domain_route_id("res_down", "dbd_7")]
    kind, shown = by_id[domain_route_id("res_down", "dbd_7")]
    assert kind == "http"
    assert shown["@id"] == MAP_ROUTE_ID
    assert [e["input"] for e in entries(shown)] == ["m7.example.test"]
    assert "m8.example.test" not in str(shown)

    # Removing the resource removes its entry; the other is still served.
    await counting.remove_route("res_down")
    held_map = await admin(caddy, "GET", f"/id/{MAP_ROUTE_ID}")
    assert [e["input"] for e in entries(held_map)] == ["m8.example.test"]
    assert [e["input"] for e in upstream_entries(held_map)] == ["res_up"]
    await served_by(caddy, "m8.example.test", "first")
    status, _ = await get(caddy, "m7.example.test")
    assert status == 404


async def test_an_older_agents_single_map_is_rewritten_at_start_and_its_hosts_stay_served(
    caddy: Caddy, apps: list[Upstream], edge: tuple[CountingEdge, AccessFailures]
) -> None:
    first, second = apps[0], apps[1]
    counting, _ = edge
    await counting.set_upstreams("res_a", [HOST], "/", [first.dial], [binding(1)])
    await counting.set_upstreams("res_b", ["b.localhost"], "/", [second.dial], [binding(2)])
    # The map as the agent before the two maps wrote it: one entry per host carrying its
    # four dials and three tags, read by one map and one proxy.
    slots = [f"{{berth.up{i}}}" for i in range(4)]
    tags = ["{berth.resource}", "{berth.binding}", "{berth.route}"]

    def old_entry(resource: str, n: int, dial: str) -> dict[str, object]:
        rid = domain_route_id(resource, f"dbd_{n}")
        return {
            "@id": rid,
            "input": f"m{n}.example.test",
            "outputs": [dial] * 4 + [resource, f"dbd_{n}", rid],
        }

    current = await admin(caddy, "GET", f"/id/{MAP_ROUTE_ID}")
    [subroute] = [h for h in current["handle"] if h["handler"] == "subroute"]
    proxy_route = subroute["routes"][0]
    old_map = {
        "@id": MAP_ROUTE_ID,
        "handle": [
            {
                "handler": "map",
                "source": "{http.request.host}",
                "destinations": slots + tags,
                "mappings": [old_entry("res_a", 1, first.dial), old_entry("res_b", 2, second.dial)],
                "defaults": [""] * 7,
            },
            {
                "handler": "subroute",
                "routes": [
                    {
                        "match": proxy_route["match"],
                        "handle": [
                            {
                                "handler": "vars",
                                "berth_resource": tags[0],
                                "berth_binding": tags[1],
                                "berth_route": tags[2],
                            },
                            proxy_route["handle"][1],
                        ],
                    }
                ],
            },
        ],
    }
    await admin(caddy, "PATCH", f"/id/{MAP_ROUTE_ID}", old_map)
    await served_by(caddy, "m2.example.test", "second")  # the old shape serves

    # A new agent starts on that Caddy: one rewrite, and every host is still served.
    restarted = CountingEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}")
    try:
        await restarted.ensure_server()
        rewritten = await admin(caddy, "GET", f"/id/{MAP_ROUTE_ID}")
        assert [(e["input"], e["outputs"]) for e in entries(rewritten)] == [
            ("m1.example.test", ["res_a", "dbd_1"]),
            ("m2.example.test", ["res_b", "dbd_2"]),
        ]
        assert [e["@id"] for e in upstream_entries(rewritten)] == [
            upstreams_entry_id("res_a"),
            upstreams_entry_id("res_b"),
        ]
        await served_by(caddy, "m1.example.test", "first")
        await served_by(caddy, "m2.example.test", "second")
        # And the new agent's next redeploy works from it: its route and upstreams, one write.
        restarted.calls.clear()
        await restarted.set_upstreams("res_b", ["b.localhost"], "/", [first.dial], [binding(2)])
        assert [c for c in restarted.calls if c[0] != "GET"] == [("PATCH", SERVERS_PATH)]
        await served_by(caddy, "m2.example.test", "first")
    finally:
        await restarted.close()
