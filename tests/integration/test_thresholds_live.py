"""Thresholds against a real agent: a container that turns busy crosses a resource rule, turns
idle and recovers, and the webhook sees exactly those two state changes, signed."""

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest
from aiohttp import web

from tests.harness import Coordinator, eventually, serving
from tests.integration.stacks import workload

pytestmark = pytest.mark.docker
SECRET = "webhook-secret-0123456789"
# Spins only while /tmp/busy exists, so the test flips the load without redeploying.
TOGGLED_LOAD = "while :; do if [ -f /tmp/busy ]; then :; else sleep 0.2; fi; done"


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """The shared fixture's coordinator, allowed to call this test's loopback webhook receiver."""
    async with serving(
        tmp_path / "coordinator",
        database_url,
        ws_ping_seconds=5.0,
        allow_private_webhook_targets=True,
    ) as harness:
        yield harness


async def test_resource_threshold_crosses_and_recovers_with_signed_webhooks(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    received: list[dict[str, Any]] = []
    bad_signatures: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Berth-Signature", "")):
            bad_signatures.append(request.headers.get("X-Berth-Signature", ""))
        received.append(json.loads(body))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    stack = await workload(
        coordinator,
        admin_token,
        tmp_path / "agent",
        TOGGLED_LOAD,
        agent_env={"BERTH_AGENT_SAMPLE_SECONDS": "1"},
    )
    try:
        await stack.deploy()
        await stack.call(
            "POST",
            "/runtime-monitoring/thresholds",
            {
                "scope": {"kind": "resource", "resourceId": stack.resource_id},
                "rules": [
                    {
                        "ruleId": "cpu",
                        "signal": "cpu",
                        "metric": "containerCpuPercent",
                        # Low enough for a spinning container to reach on a loaded CI host
                        # (two cores shared by ten busy processes give it ~20 %); idle is ~0.
                        "warning": 10,
                        "critical": 5000,
                        "comparator": "greater-than-or-equal",
                    }
                ],
                "webhookUrl": f"http://127.0.0.1:{port}/hook",
                "webhookSecret": SECRET,
            },
        )
        query = (
            "/runtime-monitoring/thresholds"
            f"?scope.kind=resource&scope.resourceId={stack.resource_id}"
        )

        async def state() -> str:
            shown = await stack.call("GET", query)
            return str(shown["evaluation"]["state"])

        async def evaluated_ok() -> bool:
            shown = await stack.call("GET", query)
            return bool(shown["evaluation"].get("sourceSampleId")) and await state() == "ok"

        await eventually(evaluated_ok, timeout=30, what="an ok evaluation of idle load")

        [container] = stack.containers(docker_client)
        container.exec_run(["touch", "/tmp/busy"])

        async def warning() -> bool:
            return await state() == "warning"

        await eventually(warning, timeout=30, what="the busy container to cross 10 %")
        shown = await stack.call("GET", query)
        [crossed] = shown["evaluation"]["crossed"]
        assert crossed["ruleId"] == "cpu"
        assert crossed["severity"] == "warning"
        assert crossed["observedValue"] >= 10

        container.exec_run(["rm", "-f", "/tmp/busy"])

        async def recovered() -> bool:
            return await state() == "ok"

        await eventually(recovered, timeout=30, what="the idle container to recover")

        async def two_events() -> bool:
            return len(received) >= 2

        await eventually(two_events, timeout=20, what="two webhook deliveries")
        assert bad_signatures == []
        assert [(e["previousState"], e["state"]) for e in received] == [
            ("ok", "warning"),
            ("warning", "ok"),
        ], received
    finally:
        await stack.agent.stop()
        for container in stack.containers(docker_client, all=True):
            container.remove(force=True)
        await runner.cleanup()
