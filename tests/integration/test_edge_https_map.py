"""A real Caddy behind the agent's edge: HTTPS bindings that only proxy their host are entries of
the HTTPS map, whose matcher (and its redirects') names exactly them, so Caddy manages their
certificates; an add is one write. (Served over HTTPS with a certificate from a real
ACME CA: ``test_domain_https_e2e.py``.)"""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from agent.edge_routes import domain_route_id
from agent.edge_setup import SERVERS_PATH
from agent.edge_tls import EdgeTls
from agent.edge_tls_map import (
    REDIRECTS_ROUTE_ID,
    TLS_MAP_ENTRIES,
    TLS_MAP_ROUTE_ID,
    TLS_MAP_UPSTREAMS,
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


async def names(caddy: Caddy) -> tuple[list[str], list[str]]:
    """The hosts the HTTPS map's matcher and its redirects' matcher name."""
    tls_map = await admin(caddy, "GET", f"/id/{TLS_MAP_ROUTE_ID}/match")
    redirects = await admin(caddy, "GET", f"/id/{REDIRECTS_ROUTE_ID}/match")
    return tls_map[0]["host"], redirects[0]["host"]


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


async def test_a_plain_https_binding_is_a_map_entry_whose_name_caddy_manages(
    caddy: Caddy, edge: CountingEdge
) -> None:
    first, second = binding(1), binding(2)
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [first])
    assert await names(caddy) == (["s1.example.test"], ["s1.example.test"])
    held: dict[str, Any] = await admin(caddy, "GET", f"/id/{domain_route_id('res_a', 'dbd_1')}")
    assert (held["input"], held["outputs"]) == ("s1.example.test", ["res_a", "dbd_1"])
    tls_routes = await admin(caddy, "GET", "/config/apps/http/servers/berth-tls/routes")
    # No route of its own on either server: the map serves it.
    assert [r["@id"] for r in tls_routes if r["@id"].startswith("berth-res_a.")] == []
    assert await http_get(caddy, "s1.example.test") == (
        308,
        f"https://s1.example.test:{TLS_PORT}/cart?x=1",
    )
    # Caddy took the name to manage: its automatic HTTPS logs the order's attempt.
    log = caddy.data_dir.parent / "caddy.log"

    async def ordered() -> bool:
        return "s1.example.test" in log.read_text(errors="replace")

    await eventually(ordered, timeout=15, what="Caddy managing the mapped name")

    # Adding a second binding: the map route (its entries and the matcher naming them) and
    # the redirects' matcher in one write of the servers, read just before it; no other
    # read of the whole config or of a route list.
    edge.calls.clear()
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [first, second])
    writes = [(m, p) for m, p in edge.calls if m != "GET"]
    assert writes == [("PATCH", SERVERS_PATH)]
    assert full_reads(edge.calls) == [("GET", SERVERS_PATH)]
    both = ["s1.example.test", "s2.example.test"]
    assert await names(caddy) == (both, both)
    upstreams = await admin(caddy, "GET", TLS_MAP_UPSTREAMS)
    assert [(u["input"], u["outputs"][0]) for u in upstreams] == [("res_a", UPSTREAM)]


async def test_a_binding_leaves_the_map_when_it_redirects_and_names_follow_removals(
    caddy: Caddy, edge: CountingEdge
) -> None:
    plain, other = binding(1), binding(3)
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [plain])
    await edge.set_upstreams("res_b", [], "/", [UPSTREAM], [other])
    assert (await names(caddy))[0] == ["s1.example.test", "s3.example.test"]

    # A redirecting binding is two routes (HTTPS and its HTTP side), not a map entry.
    redirecting = binding(1, redirect_to="www.example.test", redirect_status=301)
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [redirecting])
    assert await names(caddy) == (["s3.example.test"], ["s3.example.test"])
    tls_routes = await admin(caddy, "GET", "/config/apps/http/servers/berth-tls/routes")
    assert domain_route_id("res_a", "dbd_1") in [r["@id"] for r in tls_routes]
    # Back into the map: its routes go, its entry and name come back.
    await edge.set_upstreams("res_a", [], "/", [UPSTREAM], [plain])
    tls_routes = await admin(caddy, "GET", "/config/apps/http/servers/berth-tls/routes")
    assert domain_route_id("res_a", "dbd_1") not in [r["@id"] for r in tls_routes]
    assert (await names(caddy))[0] == ["s1.example.test", "s3.example.test"]

    # The preview's JSON of a mapped binding names its own host only (the matcher lists other
    # resources' names, which may be another tenant's).
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
    assert await admin(caddy, "GET", TLS_MAP_ENTRIES) == []
    assert await admin(caddy, "GET", TLS_MAP_UPSTREAMS) == []
