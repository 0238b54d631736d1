"""A coordinator killed at each phase of a deployment: the stored timeline is what happened.

A real coordinator process (killed by a test-only crash point), a real agent process, real
Docker and Caddy. While the coordinator is down the agent finishes on its own; after the
restart the replayed events must land in the agent's order before the terminal event, with
the agent's times, and a stream opened with ``untilTerminal=true`` must see all of them.
"""

import asyncio
import json
import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from tests.coordinator_process import CoordinatorProcess
from tests.edge_proxy import Caddy
from tests.harness import eventually, scaled
from tests.integration.test_deploy_e2e import Stack, _stack

pytestmark = pytest.mark.docker

# Where the coordinator dies (coordinator/faults.py): after recording that the plan is being
# sent; after the agent accepted but before that was stored; once it shows ``running``; after
# storing the first of the agent's lines; when the agent's result arrived but before it was
# stored.
CRASH_POINTS = [
    "plan-sent",
    "plan-accepted",
    "agent-accepted",
    "progress-stored",
    "result-received",
]
STATUS_ORDER = ["created", "planning", "planned", "running", "succeeded"]
# Clocks are the same host's; sub-millisecond rounding in storage is all this allows.
SLACK = timedelta(milliseconds=1)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _stream(
    coordinator: CoordinatorProcess, token: str, deployment_id: str, opened: asyncio.Event
) -> list[tuple[str, dict[str, Any]]]:
    """Every SSE frame (name, data) of an ``untilTerminal=true`` stream, up to its end."""
    frames: list[tuple[str, dict[str, Any]]] = []
    url = f"{coordinator.url}/deployments/{deployment_id}/events/stream?untilTerminal=true"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        assert response.status == 200, await response.text()
        opened.set()
        name, data = "", ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif not line and name:
                frames.append((name, json.loads(data)))
                name, data = "", ""
    return frames


def _journal(stack: Stack, deployment_id: str) -> dict[str, Any]:
    path = stack.agent.state_dir / "deployments" / f"{deployment_id}.json"
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_timeline_after_a_coordinator_crash_is_what_happened(
    point: str, caddy: Caddy, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    coordinator = CoordinatorProcess(tmp_path / "coordinator")
    await coordinator.start(env={"BERTH_TEST_FAULTS": "1", "BERTH_TEST_CRASH_AT": point})
    try:
        token = await coordinator.bootstrap()
        stack = await _stack(coordinator, token, caddy, tmp_path, settle=2)
        agent = stack.agent.process
        assert agent is not None
        try:
            deployment_id = await stack.deploy()
            assert await coordinator.wait_exit() == -signal.SIGKILL, coordinator.log()
            if point != "plan-sent":  # the agent has the plan and finishes it on its own

                async def agent_finished() -> bool:
                    return _journal(stack, deployment_id).get("state") == "finished"

                await eventually(agent_finished, timeout=90, what="the agent to finish")
            # The agent waits (stopped) until a stream is open on the restarted coordinator,
            # so everything it replays arrives while that stream follows the deployment.
            agent.send_signal(signal.SIGSTOP)
            try:
                await coordinator.start()
                opened = asyncio.Event()
                stream = asyncio.create_task(_stream(coordinator, token, deployment_id, opened))
                async with asyncio.timeout(scaled(10)):
                    await opened.wait()
            finally:
                agent.send_signal(signal.SIGCONT)
            shown = (await stack.finish(deployment_id, timeout=90))["deployment"]
            async with asyncio.timeout(scaled(30)):
                frames = await stream
            events = [
                e["event"]
                for e in (
                    await stack.call("GET", f"/deployments/{deployment_id}/events?historyLimit=200")
                )["envelopes"]
            ]
            logs = (await stack.call("GET", f"/deployments/{deployment_id}/logs"))["logs"]
            journal = _journal(stack, deployment_id)
        finally:
            await stack.agent.stop()
    finally:
        await coordinator.close()

    assert shown["status"] == "succeeded", shown
    timeline = [(e["eventType"], e["status"], e["source"]) for e in events]
    types = [e["eventType"] for e in events]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    # One dispatch, one acceptance, then the agent's own events, and the outcome last.
    assert types.count("dispatched") == 1, timeline
    assert types.count("agent-accepted") == 1, timeline
    # (The agent logs its own "deployment-succeeded" line; the outcome is the coordinator's.)
    assert timeline.count(("deployment-succeeded", "succeeded", "domain-event")) == 1, timeline
    assert timeline[-1] == ("deployment-succeeded", "succeeded", "domain-event"), timeline
    accepted = types.index("agent-accepted")
    assert types.index("dispatched") < accepted, timeline
    agent_events = [i for i, e in enumerate(events) if e["source"] == "agent"]
    assert "traffic-switched" in types, timeline
    assert min(agent_events) > accepted, timeline
    # Statuses only move forward, and every agent event happened while it was running.
    ranks = [STATUS_ORDER.index(e["status"]) for e in events]
    assert ranks == sorted(ranks), timeline
    assert all(events[i]["status"] == "running" for i in range(accepted, len(events) - 1))
    assert events[-1]["status"] == "succeeded", timeline
    # The stored order is the order things happened (all clocks here are the same host's).
    stamps = [_time(e["emittedAt"]) for e in events]
    assert stamps == sorted(stamps), list(zip(types, stamps, strict=True))
    # startedAt / finishedAt are when the agent took the plan and when it finished.
    assert shown["startedAt"] is not None, shown
    started, finished = _time(shown["startedAt"]), _time(shown["finishedAt"])
    agent_lines = [_time(line["timestamp"]) for line in logs if line["source"] == "berth-agent"]
    assert _time(events[types.index("dispatched")]["emittedAt"]) <= started + SLACK
    assert started <= min(agent_lines) + SLACK, (started, min(agent_lines))
    assert abs(finished - _time(journal["finishedAt"])) <= SLACK, (finished, journal)
    assert abs(finished - stamps[-1]) <= SLACK
    # The stream that was open across the replay saw every event, the outcome last, then ended.
    streamed = [data["event"]["sequence"] for name, data in frames if name == "deployment-event"]
    assert streamed == [e["sequence"] for e in events], (streamed, timeline)
    assert frames[-1] == ("end", {"deploymentId": deployment_id, "status": "succeeded"})
