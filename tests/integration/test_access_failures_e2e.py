"""End to end: requests the real Caddy cannot serve get a page with a request id, and the
coordinator finds the agent's evidence by that id."""

import io
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.edge_proxy import Caddy
from tests.harness import Coordinator, eventually
from tests.integration.test_deploy_e2e import Stack, _stack
from tests.integration.test_edge_follows_containers import second_resource

pytestmark = pytest.mark.docker

_REQUEST_ID = re.compile(r"<code id=request-id>([0-9a-f-]{36})</code>")


async def _failed_page(
    session: aiohttp.ClientSession, stack: Stack, host: str, path: str = "/"
) -> tuple[int, str, str]:
    """Status, request id (from the page's body) and the body of an error page."""
    async with session.get(
        f"http://127.0.0.1:{stack.caddy.http_port}{path}", headers={"Host": host}
    ) as response:
        body = await response.text()
        assert response.content_type == "text/html", (response.status, body[:300])
        found = _REQUEST_ID.search(body)
        assert found is not None, body[:500]
        assert response.headers.get("X-Berth-Request-Id") == found.group(1)
        return response.status, found.group(1), body


async def _evidence(stack: Stack, request_id: str, query: str = "") -> dict[str, Any]:
    """The lookup answer, once the agent's report has reached the coordinator."""
    found: dict[str, Any] = {}

    async def stored() -> bool:
        status, body, _ = await stack.coordinator.call(
            "GET", f"/resource-access-failures/{request_id}{query}", token=stack.token
        )
        if status == 200:
            found.update(body)
        return status == 200

    await eventually(stored, what=f"evidence of request {request_id}")
    return found


async def test_failure_pages_name_a_request_id_that_finds_the_evidence(
    coordinator: Coordinator, admin_token: str, caddy: Caddy, tmp_path: Path
) -> None:
    stack = await _stack(coordinator, admin_token, caddy, tmp_path)
    try:
        shown = await stack.finish(await stack.deploy())
        assert shown["deployment"]["status"] == "succeeded", shown
        # Published, but nothing listens inside: the proxy's connection fails (502).
        mute_id, mute_host = await second_resource(stack, "mute", "sleep 3600")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            # 1. A stopped resource: 503 with the page, not the proxy's bare 502.
            stopped = await stack.call("POST", f"/resources/{stack.resource_id}/runtime/stop", {})
            assert stopped["status"] == "succeeded", stopped
            status, request_id, body = await _failed_page(session, stack, stack.hostname, "/a?b=1")
            assert status == 503
            assert "Application stopped" in body
            found = await _evidence(stack, request_id)
            assert found["schemaVersion"] == "resources.access-failure-evidence.lookup/v1"
            assert (found["status"], found["matchedSource"]) == (
                "found",
                "short-retention-evidence-read-model",
            )
            evidence = found["evidence"]
            assert evidence["schemaVersion"] == "resource-access-failure/v1"
            assert (evidence["requestId"], evidence["code"], evidence["httpStatus"]) == (
                request_id,
                "resource_access_resource_stopped",
                503,
            )
            assert evidence["affected"] == {
                "url": f"http://{stack.hostname}/a?b=1",
                "hostname": stack.hostname,
                "path": "/a",
                "method": "GET",
            }
            route = evidence["route"]
            assert (route["resourceId"], route["serverId"], route["routeId"]) == (
                stack.resource_id,
                stack.server_id,
                f"berth-{stack.resource_id}",
            )
            assert route["deploymentId"] == shown["deployment"]["id"]
            assert (route["routeSource"], route["routeStatus"]) == ("generated-default", "stopped")
            assert found["relatedIds"]["resourceId"] == stack.resource_id
            assert found["nextAction"] == evidence["nextAction"] == "start-resource"
            # Filters narrow the lookup: a different resource does not match.
            status, answer, _ = await coordinator.call(
                "GET",
                f"/resource-access-failures/{request_id}?resourceId={mute_id}",
                token=admin_token,
            )
            assert status == 404, answer
            assert answer["error"]["code"] == "not_found"
            filtered = await _evidence(
                stack, request_id, f"?resourceId={stack.resource_id}&hostname={stack.hostname}"
            )
            assert filtered["filters"]["resourceId"] == stack.resource_id

            # 2. A running container whose app does not answer: 502, its own code.
            status, request_id, body = await _failed_page(session, stack, mute_host)
            assert status == 502
            evidence = (await _evidence(stack, request_id))["evidence"]
            assert (evidence["code"], evidence["route"]["resourceId"]) == (
                "resource_access_upstream_unavailable",
                mute_id,
            )
            assert evidence["category"] == "runtime"

            # 3. A host nothing routes: 404 with the page; no resource named.
            status, request_id, body = await _failed_page(session, stack, "nobody.example.test")
            assert status == 404
            evidence = (await _evidence(stack, request_id))["evidence"]
            assert (evidence["code"], evidence["route"]["resourceId"]) == (
                "resource_access_route_not_found",
                None,
            )
            assert evidence["route"]["routeSource"] == "none"
            # An upload there gets the page too, whatever its size (the agent answers before
            # it reads the body Caddy passes on).
            async with session.post(
                f"http://127.0.0.1:{caddy.http_port}/upload",
                headers={"Host": "nobody.example.test"},
                data=io.BytesIO(b"x" * (2 * 1024 * 1024)),
            ) as response:
                body = await response.text()
                assert response.status == 404, body[:300]
                assert _REQUEST_ID.search(body) is not None, body[:300]

            # Routes added after the fallback still win over it.
            started = await stack.call("POST", f"/resources/{stack.resource_id}/runtime/start", {})
            assert started["status"] == "succeeded", started
            async with session.get(
                f"http://127.0.0.1:{caddy.http_port}/", headers={"Host": stack.hostname}
            ) as response:
                assert (response.status, (await response.text()).strip()) == (200, "v1")

            # An id nobody issued is a 404 envelope.
            status, answer, _ = await coordinator.call(
                "GET",
                "/resource-access-failures/00000000-0000-0000-0000-000000000000",
                token=admin_token,
            )
            assert status == 404, answer
    finally:
        await stack.agent.stop()
