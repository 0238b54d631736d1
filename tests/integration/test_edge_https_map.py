"""A real Caddy behind the agent's edge: HTTPS bindings that only proxy their host are one host
route per resource, whose matcher (and the redirects') names exactly them, so Caddy manages their
certificates; an add is one write. (Served over HTTPS with a certificate from a real
ACME CA: ``test_domain_https_e2e.py``.)"""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from agent.edge_map import map_entry, map_route, upstreams_entry
from agent.edge_routes import domain_route_id
from agent.edge_setup import SERVER_PATH, SERVERS_PATH, TLS_SERVER_PATH
from agent.edge_tls import EdgeTls
from agent.edge_tls_map import (
    OLD_TLS_MAP_ROUTE_ID,
    REDIRECTS_ROUTE_ID,
    TLS_UPSTREAMS_SUFFIX,
    host_match,
    hosts_route_id,
)
from shared.messages.deploy import DomainRoute
from tests.edge_proxy import Caddy, free_port
from tests.harness import eventually
from tests.integration.test_edge_held_routes import CountingEdge, admin, full_reads

TLS_PORT = free_port()
UPSTREAM = f"127.0.0.1:{free_port()}"


def binding(n: int, **extra: object) -> DomainRoute:
    return DomainRoute.model_validate(
        {"id": f"dbd_{n}", "domain_name": f"s{n}.example.test", **extra}
    )


@pytest.fixture
async def edge(caddy: Caddy) -> AsyncIterator[CountingEdge]:
    # Nothing listens at this directory: the names' orders fail, which this test does not need.
    tls = EdgeTls(f"127.0.0.1:{TLS_PORT}", directory="https://127.0.0.1:9/directory")
    edge = CountingEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}", tls)

    async def installed() -> bool:
        try:
            await edge.ensure_server()
        except Exception:
            return False  # the admin API not up yet
        return True

    await eventually(installed, timeout=15, what="Caddy's admin API")
    try:
        yield edge
    finally:
        await edge.close()


async def tls_server_routes(caddy: Caddy) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = await admin(caddy, "GET", f"{TLS_SERVER_PATH}/routes")
    return routes


async def names(caddy: Caddy) -> tuple[list[str], list[str]]:
    """The hosts the HTTPS host routes' matchers and the redirects' matcher name."""
    hosts = sorted(
        host
        for route in await tls_server_routes(caddy)
        if route["@id"].endswith(".~hosts-tls")
        for host in route["match"][0]["host"]
    )
    redirects = await admin(caddy, "GET", f"/id/{REDIRECTS_ROUTE_ID}/match")
    return hosts, redirects[0]["host"]


async def http_get(caddy: Caddy, host: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{caddy.http_port}/cart?x=1",
            headers={"Host": host},
            allow_redirects=False,
        ) as response,
    ):
        return response.status, response.headers.get("Location", "")


async def test_plain_https_bindings_are_one_host_route_whose_names_caddy_manages(
    caddy: Caddy, edge: CountingEdge
) -> None:
    first, second = binding(1), binding(2)
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [first])
    assert await names(caddy) == (["s1.example.test"], ["s1.example.test"])
    held: dict[str, Any] = await admin(caddy, "GET", f"/id/{hosts_route_id('res_a')}")
    assert held["match"] == [{"host": ["s1.example.test"]}]
    tag, proxy = held["handle"]
    assert tag["berth_resource"] == "res_a"
    assert "dbd_1" not in str(held)  # which binding a name is stays the agent's
    assert edge.host_binding("s1.example.test") == ("res_a", "dbd_1")
    assert proxy["upstreams"] == [{"dial": UPSTREAM}]
    # No route of the binding's own on either server: the host route serves it.
    own = [r["@id"] for r in await tls_server_routes(caddy) if r["@id"].startswith("berth-res_a.")]
    assert own == [hosts_route_id("res_a")]
    assert await http_get(caddy, "s1.example.test") == (
        308,
        f"https://s1.example.test:{TLS_PORT}/cart?x=1",
    )
    # Caddy took the name to manage: its automatic HTTPS logs the order's attempt.
    log = caddy.data_dir.parent / "caddy.log"

    async def ordered() -> bool:
        return "s1.example.test" in log.read_text(errors="replace")

    await eventually(ordered, timeout=15, what="Caddy managing the host route's name")

    # Adding a second binding: the host route and the redirects' matcher in one write of the
    # servers, read just before it; no other read of the whole config or of a route list.
    edge.calls.clear()
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [first, second])
    writes = [(m, p) for m, p in edge.calls if m != "GET"]
    assert writes == [("PATCH", SERVERS_PATH)]
    assert full_reads(edge.calls) == [("GET", SERVERS_PATH)]
    both = ["s1.example.test", "s2.example.test"]
    assert await names(caddy) == (both, both)
    assert edge.host_binding("s2.example.test") == ("res_a", "dbd_2")

    # A redeploy changes the upstreams of the one route, in one write.
    edge.calls.clear()
    moved = "127.0.0.1:1"
    await edge.set_upstreams("res_a", [], "/", [moved], [first, second])
    assert [(m, p) for m, p in edge.calls if m != "GET"] == [("PATCH", SERVERS_PATH)]
    held = await admin(caddy, "GET", f"/id/{hosts_route_id('res_a')}")
    assert held["handle"][1]["upstreams"] == [{"dial": moved}]


async def test_an_agent_restart_reads_the_names_back_and_relearns_their_bindings_unwritten(
    caddy: Caddy, edge: CountingEdge
) -> None:
    first, second = binding(1), binding(2)
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [first, second])
    tls = EdgeTls(f"127.0.0.1:{TLS_PORT}", directory="https://127.0.0.1:9/directory")
    restarted = CountingEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}", tls)
    try:
        await restarted.ensure_server()
        # Caddy holds the names, not which binding each is: unknown until the agent's
        # reconciliation of the resource (from its containers' labels) names them.
        assert restarted.host_binding("S2.example.test") is None
        # The same bindings again: nothing to write, and the bindings are known.
        restarted.calls.clear()
        await restarted.set_upstreams("res_a", [], "/", [UPSTREAM], [first, second])
        assert [(m, p) for m, p in restarted.calls if m != "GET"] == []
        assert restarted.host_binding("S2.example.test") == ("res_a", "dbd_2")
        assert await names(caddy) == (["s1.example.test", "s2.example.test"],) * 2
        [shown] = [s for s in await restarted.inspect("res_a") if s[1].endswith("dbd_2")]
        assert shown[:2] == ("https", domain_route_id("res_a", "dbd_2"))
        assert shown[2]["match"] == [{"host": ["s2.example.test"]}]
    finally:
        await restarted.close()


async def test_an_earlier_agents_https_map_becomes_host_routes(
    caddy: Caddy, edge: CountingEdge
) -> None:
    # What an agent before host routes left in Caddy: one map route with the entries.
    entry = map_entry("res_a", binding(1))
    old = {
        **map_route([entry], [upstreams_entry("res_a", [UPSTREAM], TLS_UPSTREAMS_SUFFIX)]),
        "@id": OLD_TLS_MAP_ROUTE_ID,
        "match": host_match(["s1.example.test"]),
    }
    await admin(caddy, "POST", f"{TLS_SERVER_PATH}/routes", old)
    tls = EdgeTls(f"127.0.0.1:{TLS_PORT}", directory="https://127.0.0.1:9/directory")
    upgraded = CountingEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}", tls)
    try:
        await upgraded.ensure_server()
        ids = [r["@id"] for r in await tls_server_routes(caddy)]
        assert OLD_TLS_MAP_ROUTE_ID not in ids
        assert hosts_route_id("res_a") in ids
        assert await names(caddy) == (["s1.example.test"], ["s1.example.test"])
        # Its first reconciliation names the binding and leaves the host route as it is
        # (the one write adds the resource's own route, which this test's Caddy lacked).
        upgraded.calls.clear()
        await upgraded.set_upstreams("res_a", [], "/", [UPSTREAM], [binding(1)])
        assert [(m, p) for m, p in upgraded.calls if m != "GET"] == [
            ("POST", f"{SERVER_PATH}/routes")
        ]
        assert upgraded.host_binding("s1.example.test") == ("res_a", "dbd_1")
    finally:
        await upgraded.close()


async def test_an_earlier_agents_host_routes_keep_their_bindings_and_lose_the_ids_list(
    caddy: Caddy, edge: CountingEdge
) -> None:
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [binding(1)])
    # An agent before this one also listed the binding ids in the route (``berth_bindings``).
    own = hosts_route_id("res_a")
    await admin(caddy, "POST", f"/id/{own}/handle/0/berth_bindings", ["dbd_1"])
    tls = EdgeTls(f"127.0.0.1:{TLS_PORT}", directory="https://127.0.0.1:9/directory")
    upgraded = CountingEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}", tls)
    try:
        await upgraded.ensure_server()
        assert upgraded.host_binding("s1.example.test") == ("res_a", "dbd_1")
        # Its first change of the resource writes the route without the list.
        await upgraded.set_upstreams("res_a", [], "/", [UPSTREAM], [binding(1), binding(2)])
        held: dict[str, Any] = await admin(caddy, "GET", f"/id/{own}")
        assert "berth_bindings" not in held["handle"][0]
        assert held["match"] == [{"host": ["s1.example.test", "s2.example.test"]}]
    finally:
        await upgraded.close()


async def test_a_binding_leaves_the_host_route_when_it_redirects_and_names_follow_removals(
    caddy: Caddy, edge: CountingEdge
) -> None:
    plain, other = binding(1), binding(3)
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [plain])
    await edge.set_upstreams("res_b", [], "/", [UPSTREAM], [other])
    assert (await names(caddy))[0] == ["s1.example.test", "s3.example.test"]

    # A redirecting binding is two routes (HTTPS and its HTTP side), not a host route's name.
    redirecting = binding(1, redirect_to="www.example.test", redirect_status=301)
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [redirecting])
    assert await names(caddy) == (["s3.example.test"], ["s3.example.test"])
    tls_routes = await admin(caddy, "GET", "/config/apps/http/servers/berth-tls/routes")
    assert domain_route_id("res_a", "dbd_1") in [r["@id"] for r in tls_routes]
    # Back into the host route: its routes go, its name comes back.
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [plain])
    tls_routes = await admin(caddy, "GET", "/config/apps/http/servers/berth-tls/routes")
    assert domain_route_id("res_a", "dbd_1") not in [r["@id"] for r in tls_routes]
    assert (await names(caddy))[0] == ["s1.example.test", "s3.example.test"]

    # The preview's JSON of a binding of a host route names its own host only.
    [(kind, shown_id, shown)] = [s for s in await edge.inspect("res_a") if s[1].endswith("dbd_1")]
    assert (kind, shown_id) == ("https", domain_route_id("res_a", "dbd_1"))
    assert shown["match"] == [{"host": ["s1.example.test"]}]
    assert "s3.example.test" not in str(shown)

    # A removed resource's names leave both matchers; the last one leaves them empty, which
    # matches no request.
    await edge.remove_route("res_b")
    assert await names(caddy) == (["s1.example.test"], ["s1.example.test"])
    await edge.remove_route("res_a")
    assert await names(caddy) == ([], [])
    # Not redirected any more (without the failure pages installed, Caddy's empty 200).
    assert await http_get(caddy, "s1.example.test") == (200, "")
    assert [
        r["@id"] for r in await tls_server_routes(caddy) if r["@id"].endswith(".~hosts-tls")
    ] == []
