"""A real Caddy behind the agent's edge code keeps its upstream connections open for reuse."""

import asyncio

import aiohttp
import pytest
from aiohttp import web

from agent.edge import CaddyEdge
from agent.edge_routes import UPSTREAM_IDLE_CONNECTIONS
from shared.messages.deploy import DomainRoute
from tests.edge_proxy import Caddy, free_port
from tests.harness import eventually

HOST = "pool.prod.demo.localhost"
# A binding that only proxies its host: served through the host map's shared proxy.
MAPPED = DomainRoute(id="dbd_pool", domain_name="pool.example.test", tls_mode="disabled")
WORKERS = 16
REQUESTS_EACH = 40


@pytest.mark.parametrize("host", [HOST, MAPPED.domain_name], ids=["route", "host-map"])
async def test_concurrent_visitors_reuse_upstream_connections(caddy: Caddy, host: str) -> None:
    # Each upstream connection Caddy opens shows up as one client address here.
    peers: set[object] = set()

    async def answer(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    edge = CaddyEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}")
    url = f"http://127.0.0.1:{caddy.http_port}/"
    try:

        async def routed() -> bool:
            try:
                await edge.set_upstreams("res_pool", [HOST], "/", [f"127.0.0.1:{port}"], [MAPPED])
            except Exception:
                return False
            return True

        await eventually(routed, timeout=15, what="the route in Caddy")
        connector = aiohttp.TCPConnector(limit=WORKERS)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def get() -> int:
                async with session.get(url, headers={"Host": host}) as response:
                    await response.read()
                    return response.status

            async def served() -> bool:
                return await get() == 200

            await eventually(served, timeout=15, what="the route served")
            peers.clear()

            async def visitor() -> list[int]:
                return [await get() for _ in range(REQUESTS_EACH)]

            results = await asyncio.gather(*(visitor() for _ in range(WORKERS)))
        assert {status for statuses in results for status in statuses} == {200}
        # At most WORKERS connections are busy at once and Caddy keeps up to
        # UPSTREAM_IDLE_CONNECTIONS idle: more than both means it closed and reopened them
        # (with Go's default of 2 idle per upstream: hundreds for these 640 requests).
        assert len(peers) <= WORKERS + UPSTREAM_IDLE_CONNECTIONS, len(peers)
    finally:
        await edge.close()
        await runner.cleanup()
