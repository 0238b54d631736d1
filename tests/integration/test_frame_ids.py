"""Frame ids under load: every kind of request answered while logs and samples flow on the same
link (a reply numbered before its slow work ran used to be refused as a reused id and lost)."""

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from agent.runtime import SERVER_LABEL
from tests.harness import Coordinator, eventually, scaled
from tests.integration.stacks import Workload, deployed_workload

pytestmark = pytest.mark.docker

# About a thousand lines a second: log chunks keep taking ids while requests are worked on.
CHATTY = (
    'i=0; while :; do i=$((i+1)); echo "line-$i"; '
    "if [ $((i % 100)) -eq 0 ]; then sleep 0.1; fi; done"
)
ROUNDS = 6


async def _follow_logs(stack: Workload, seen: list[int]) -> None:
    """Hold a following runtime-log stream open, counting the bytes it brings."""
    headers = {"Authorization": f"Bearer {stack.token}", "Accept": "text/event-stream"}
    url = f"{stack.coordinator.url}/resources/{stack.resource_id}/runtime-logs/stream?follow=true"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http,
        http.get(url, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        async for chunk in response.content.iter_any():
            seen[0] += len(chunk)


async def _call(stack: Workload, method: str, path: str, body: Any = None) -> tuple[str, int]:
    status, answer, _ = await stack.coordinator.call(method, path, token=stack.token, json=body)
    return f"{method} {path} -> {answer if status >= 300 else ''}", status


async def _terminal_round_trip(stack: Workload) -> tuple[str, int]:
    """Open a terminal in the container (term_open is answered by term_opened), then close it."""
    what, status = "POST /terminal-sessions", 0
    code, body, _ = await stack.coordinator.call(
        "POST",
        "/terminal-sessions",
        token=stack.token,
        json={"scope": {"kind": "resource", "resourceId": stack.resource_id}},
    )
    if code != 201:
        return f"{what} -> {body}", code
    session = body["sessionId"]
    what, status = await _call(stack, "POST", f"/terminal-sessions/{session}/close", {})
    return what, status if status >= 300 else code


async def test_every_request_is_answered_while_logs_and_samples_flow(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await deployed_workload(
        coordinator,
        admin_token,
        tmp_path / "agent",
        CHATTY,
        agent_env={"BERTH_AGENT_SAMPLE_SECONDS": "1"},
    )
    seen = [0]
    follower = asyncio.create_task(_follow_logs(stack, seen))
    try:
        server = f"/servers/{stack.server_id}"
        resource = f"/resources/{stack.resource_id}"

        async def flowing() -> bool:
            assert not follower.done(), follower
            return seen[0] >= 64 * 1024

        # The stream is flowing before the requests start.
        await eventually(flowing, timeout=30, what="the log stream to bring 64 KiB")

        async with asyncio.timeout(scaled(120)):
            for _ in range(ROUNDS):
                answers = await asyncio.gather(
                    _call(stack, "GET", f"{server}/capacity"),
                    _call(stack, "GET", f"{server}/capacity"),
                    _call(stack, "GET", f"{server}/capacity"),
                    _call(
                        stack,
                        "POST",
                        f"{server}/capacity/prune",
                        {"categories": ["stopped-containers", "dangling-images"]},
                    ),
                    _call(stack, "POST", f"{server}/connectivity-tests", {}),
                    _call(stack, "GET", f"{resource}/health"),
                    _call(stack, "GET", f"{resource}/runtime-logs?tailLines=50"),
                    _terminal_round_trip(stack),
                )
                refused = [(what, status) for what, status in answers if status >= 300]
                assert not refused, refused
        assert not follower.done(), "the log stream ended under load"
        # The agent names its server on what it creates (so agents sharing an engine keep apart).
        labels = [c.labels.get(SERVER_LABEL) for c in stack.containers(docker_client)]
        assert labels == [stack.server_id], labels

        async def deployed() -> tuple[str, int]:
            await stack.deploy()  # deploy_plan, deploy_accepted, progress, result, result ack
            return "deploy", 200

        # A deployment (which replaces the container the logs come from) and a restart of the
        # new one, while capacity requests and samples keep the link busy.
        async with asyncio.timeout(scaled(120)):
            during = await asyncio.gather(
                deployed(),
                _call(stack, "GET", f"{server}/capacity"),
                _call(stack, "GET", f"{server}/capacity"),
                _call(stack, "POST", f"{server}/capacity/prune", {}),
                _call(stack, "POST", f"{server}/connectivity-tests", {}),
            )
            after = [
                await _call(stack, "POST", f"{resource}/runtime/restart", {}),
                await _call(stack, "GET", f"{server}/capacity"),
            ]
        refused = [(what, status) for what, status in [*during, *after] if status >= 300]
        assert not refused, refused
        log = stack.agent.log()
        assert "id_reuse" not in log, [line for line in log.splitlines() if "id_reuse" in line]
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await stack.agent.stop()
