"""The on-demand ask allows exactly the names the agent routes on its real Caddy's HTTPS server."""

import aiohttp

from agent.edge import CaddyEdge
from agent.edge_tls import EdgeTls, ask_url_in
from shared.messages.deploy import DomainRoute
from tests.edge_proxy import Caddy, free_port
from tests.harness import eventually

NAME = "shop.apps.example.test"
# On demand: Caddy orders nothing until a handshake, so no CA is needed here (nothing listens
# at this directory, and nothing may be ordered from it).
GENERATED = DomainRoute(id="dbd_gen", domain_name=NAME, tls_mode="auto", on_demand=True)


async def test_a_removed_resource_s_names_are_refused_by_the_ask_at_once(caddy: Caddy) -> None:
    tls = EdgeTls(f"127.0.0.1:{free_port()}", directory="https://127.0.0.1:9/directory")
    edge = CaddyEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}", tls)
    upstream = f"127.0.0.1:{free_port()}"
    try:

        async def routed() -> bool:
            try:
                await edge.set_upstreams("res_shop", [], "/", [upstream], [GENERATED])
            except Exception:
                return False
            return True

        await eventually(routed, timeout=15, what="the route in Caddy")
        async with aiohttp.ClientSession() as session:
            config = await (await session.get(f"{caddy.admin_url}/config/apps/tls")).json()
            # Written in the form this Caddy takes (ask, or the http permission module).
            ask = ask_url_in(config["automation"])
            assert ask.startswith("http://127.0.0.1:")

            async def asked(name: str) -> int:
                async with session.get(ask, params={"domain": name}) as response:
                    return response.status

            assert (await asked(NAME), await asked("other.apps.example.test")) == (200, 403)
            await edge.remove_route("res_shop")
            assert await asked(NAME) == 403
            # Routed again: allowed again.
            await edge.set_upstreams("res_shop", [], "/", [upstream], [GENERATED])
            assert await asked(NAME) == 200
    finally:
        await edge.close()
