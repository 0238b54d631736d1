"""End to end: proxy configuration preview read back from the real Caddy, edge settings and
bootstrap pushed through the real agent."""

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.edge_proxy import Caddy, free_port
from tests.harness import Coordinator, eventually
from tests.integration.edge_stacks import bind_domain
from tests.integration.test_deploy_e2e import Stack, _stack
from tests.unit.coordinator.support import assert_error, audit_events

pytestmark = pytest.mark.docker


async def _preview(stack: Stack, query: str = "") -> dict[str, Any]:
    return dict(
        await stack.call("GET", f"/resources/{stack.resource_id}/proxy-configuration{query}")
    )


async def _status(session: aiohttp.ClientSession, port: int, host: str) -> int | None:
    try:
        async with session.get(f"http://127.0.0.1:{port}/", headers={"Host": host}) as response:
            return response.status
    except aiohttp.ClientError:
        return None


async def test_preview_follows_what_caddy_holds_and_settings_reach_the_edge(
    coordinator: Coordinator, admin_token: str, caddy: Caddy, tmp_path: Path
) -> None:
    stack = await _stack(coordinator, admin_token, caddy, tmp_path)
    try:
        first = await stack.deploy()
        assert (await stack.finish(first))["deployment"]["status"] == "succeeded"

        shown = await _preview(stack, "?includeDiagnostics=true")
        assert (shown["status"], shown["stale"], shown["routeScope"]) == (
            "applied",
            False,
            "latest",
        )
        assert shown["lastAppliedDeploymentId"] == shown["deploymentId"] == first
        [generated] = shown["routes"]
        assert (generated["hostname"], generated["source"], generated["scheme"]) == (
            stack.hostname,
            "generated-default",
            "http",
        )
        context = generated["appliedRouteContext"]
        assert (context["routeId"], context["serverId"]) == (
            f"berth-{stack.resource_id}",
            stack.server_id,
        )
        # The section is Caddy's own JSON for the route, read back through the agent.
        [section] = shown["sections"]
        assert (section["format"], section["id"]) == ("caddy-json", "caddy-http-routes")
        [route] = json.loads(section["content"])
        assert route["@id"] == f"berth-{stack.resource_id}"
        assert route["match"] == [{"host": [stack.hostname]}]
        assert shown["diagnostics"]["routeCount"] == 1

        # A binding added after the deployment is not at the edge yet: stale until redeployed.
        binding = await bind_domain(stack, "shop.example.test")
        shown = await _preview(stack)
        assert (shown["status"], shown["stale"]) == ("partially-applied", True)
        assert [w["code"] for w in shown["warnings"]] == ["route-not-applied"]
        bound = next(r for r in shown["routes"] if r["source"] == "durable-domain")
        assert (bound["hostname"], bound["appliedRouteContext"]) == ("shop.example.test", None)
        second = await stack.deploy()
        assert (await stack.finish(second))["deployment"]["status"] == "succeeded"
        shown = await _preview(stack)
        assert (shown["status"], shown["stale"]) == ("applied", False)
        bound = next(r for r in shown["routes"] if r["source"] == "durable-domain")
        assert bound["appliedRouteContext"]["domainBindingId"] == binding
        snapshot = await _preview(stack, f"?routeScope=deployment-snapshot&deploymentId={first}")
        assert snapshot["deploymentId"] == first

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            # Move the HTTP listener through the API: the agent re-points Caddy's server.
            moved = free_port()
            answer = await stack.call(
                "POST",
                f"/servers/{stack.server_id}/edge-proxy/configuration",
                {"listen": f"127.0.0.1:{moved}", "acmeEmail": "ops@example.test"},
            )
            assert answer["edgeProxy"]["status"] == "ready", str(answer["edgeProxy"])
            assert answer["edgeProxy"]["kind"] == "caddy"

            async def served_on_new_port() -> bool:
                return await _status(session, moved, stack.hostname) == 200

            await eventually(served_on_new_port, what="the edge on its new listen address")
            assert await _status(session, caddy.http_port, stack.hostname) is None
            events = await audit_events(coordinator, admin_token, aggregateId=stack.server_id)
            [configured] = [e for e in events if e["eventType"] == "server.edge-proxy-configured"]
            assert configured["payload"]["listen"] == f"127.0.0.1:{moved}"

            # Break the edge behind Berth's back; a bootstrap rebuilds it and every route.
            async with session.delete(
                f"{caddy.admin_url}/config/apps/http/servers/berth",
                headers={"Origin": caddy.admin_url},
            ) as response:
                assert response.status == 200
            assert await _status(session, moved, stack.hostname) is None
            boot = await stack.call("POST", f"/servers/{stack.server_id}/edge-proxy/bootstrap", {})
            assert (boot["serverId"], boot["attemptId"][:4]) == (stack.server_id, "epa_")
            assert await _status(session, moved, stack.hostname) == 200
            assert await _status(session, moved, "shop.example.test") == 200

            # Bad input: 400, nothing stored or pushed.
            before = await audit_events(coordinator, admin_token)
            for body in (
                {"listen": "{env.HOME}:80"},
                {"proxyKind": "none"},
                {"acmeEmail": "not an email"},
                {"http3": True, "surprise": 1},
            ):
                refused = await coordinator.call(
                    "POST",
                    f"/servers/{stack.server_id}/edge-proxy/configuration",
                    token=admin_token,
                    json=body,
                )
                assert_error(refused, 400, "invalid_request")
            assert await audit_events(coordinator, admin_token) == before
            assert await _status(session, moved, stack.hostname) == 200

        # Agent offline: the preview says so instead of failing; a bootstrap is a 503.
        await stack.agent.stop()

        async def offline() -> bool:
            return await coordinator.agent_status(admin_token, stack.server_id) != "online"

        await eventually(offline, what="agent offline")
        shown = await _preview(stack)
        assert (shown["status"], shown["stale"]) == ("unknown", True)
        assert [w["code"] for w in shown["warnings"]] == ["agent-offline"]
        refused = await coordinator.call(
            "POST",
            f"/servers/{stack.server_id}/edge-proxy/bootstrap",
            token=admin_token,
            json={},
        )
        assert_error(refused, 503, "unavailable")
    finally:
        await stack.agent.stop()
