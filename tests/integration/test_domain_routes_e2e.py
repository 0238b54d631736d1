"""End to end: domain bindings become edge routes on the agent's real Caddy."""

from pathlib import Path

import aiohttp
import pytest

from tests.edge_proxy import Caddy
from tests.harness import Coordinator
from tests.integration.edge_stacks import bind_domain
from tests.integration.test_deploy_e2e import Stack, _stack

pytestmark = pytest.mark.docker


async def _get(
    session: aiohttp.ClientSession, stack: Stack, host: str, path: str = "/"
) -> tuple[int, str, str | None]:
    async with session.get(
        f"http://127.0.0.1:{stack.caddy.http_port}{path}",
        headers={"Host": host},
        allow_redirects=False,
    ) as response:
        return response.status, (await response.text()).strip(), response.headers.get("Location")


async def _caddy_route(session: aiohttp.ClientSession, stack: Stack, route_id: str) -> int:
    async with session.get(
        f"{stack.caddy.admin_url}/id/{route_id}", headers={"Origin": stack.caddy.admin_url}
    ) as response:
        return response.status


async def test_bound_domains_are_served_redirected_and_prove_ownership(
    coordinator: Coordinator, admin_token: str, caddy: Caddy, tmp_path: Path
) -> None:
    stack = await _stack(coordinator, admin_token, caddy, tmp_path)
    try:
        apex = await bind_domain(stack, "app.example.test")
        www = await bind_domain(stack, "www.example.test", redirectTo="app.example.test")
        moved = await bind_domain(stack, "old.example.test", redirectTo="app.example.test")
        await stack.call(
            "POST",
            f"/domain-bindings/{moved}/route",
            {"redirectTo": "app.example.test", "redirectStatus": 308},
        )
        _ = await stack.call(
            "POST", f"/domain-bindings/{apex}/ownership-confirmations", {"method": "http-token"}
        )
        proof = (await stack.call("GET", f"/domain-bindings/{apex}"))["binding"]["ownership"]
        assert (await stack.call("GET", f"/domain-bindings/{apex}"))["proxyReadiness"] == (
            "not-ready"
        )

        shown = await stack.finish(await stack.deploy())
        assert shown["deployment"]["status"] == "succeeded", shown
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert await _get(session, stack, "app.example.test") == (200, "v1", None)
            # The generated host name keeps working next to the bound ones.
            assert (await _get(session, stack, stack.hostname))[:2] == (200, "v1")
            assert await _get(session, stack, "www.example.test", "/a/b?c=1") == (
                301,
                "",
                "http://app.example.test/a/b?c=1",
            )
            assert (await _get(session, stack, "old.example.test", "/x"))[::2] == (
                308,
                "http://app.example.test/x",
            )
            assert await _get(session, stack, "app.example.test", proof["httpPath"]) == (
                200,
                proof["token"],
                None,
            )
            for binding in (apex, www, moved):
                shown = await stack.call("GET", f"/domain-bindings/{binding}")
                assert shown["proxyReadiness"] == "ready", shown
            # One route per binding, each addressed by its id in Caddy's config.
            for binding in (apex, www, moved):
                route = f"berth-{stack.resource_id}.{binding}"
                assert await _caddy_route(session, stack, route) == 200, route

            # A changed route is not ready until a deployment carries it to the edge.
            await stack.call(
                "POST",
                f"/domain-bindings/{moved}/route",
                {"redirectTo": "app.example.test", "redirectStatus": 301},
            )
            shown = await stack.call("GET", f"/domain-bindings/{moved}")
            assert shown["proxyReadiness"] == "not-ready", shown

            # A binding deleted is gone from the edge after the next deployment.
            await stack.call(
                "DELETE", f"/domain-bindings/{www}", {"confirmation": {"domainBindingId": www}}
            )
            shown = await stack.finish(await stack.deploy())
            assert shown["deployment"]["status"] == "succeeded", shown
            assert await _caddy_route(session, stack, f"berth-{stack.resource_id}.{www}") == 404
            assert await _get(session, stack, "app.example.test") == (200, "v1", None)
            assert (await _get(session, stack, "www.example.test"))[0] != 301
            assert (await _get(session, stack, "old.example.test"))[0] == 301
            shown = await stack.call("GET", f"/domain-bindings/{moved}")
            assert shown["proxyReadiness"] == "ready", shown
    finally:
        await stack.agent.stop()
