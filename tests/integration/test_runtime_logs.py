"""Runtime logs end to end: a real agent reads a real container's log through Docker's API and
the coordinator serves it as JSON history and as a resumable, masked SSE stream."""

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from tests.harness import Coordinator, eventually, scaled
from tests.integration.stacks import Workload, deployed_workload

pytestmark = pytest.mark.docker

SECRET = "s3cr3t-Value-42"
NUMBERED = (
    'i=0; while [ $i -lt 500 ]; do i=$((i+1)); echo "line-$i"; done; '
    'echo "key=$API_KEY"; sleep 0.3; echo err >&2; sleep 3600'
)


async def _logs(stack: Workload, query: str) -> tuple[int, Any]:
    status, body, _ = await stack.coordinator.call(
        "GET", f"/resources/{stack.resource_id}/runtime-logs?{query}", token=stack.token
    )
    return status, body


@asynccontextmanager
async def _sse(
    stack: Workload, query: str, last_id: str | None = None
) -> AsyncIterator[aiohttp.ClientResponse]:
    headers = {"Authorization": f"Bearer {stack.token}", "Accept": "text/event-stream"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http,
        http.get(
            f"{stack.coordinator.url}/resources/{stack.resource_id}/runtime-logs/stream?{query}",
            headers=headers,
        ) as response,
    ):
        assert response.status == 200, await response.text()
        yield response


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str | None, Any]]:
    """(event, id, data) of each SSE frame (comments skipped)."""
    name, event_id, data = "message", None, ""
    while True:
        raw = await response.content.readline()
        if not raw:
            return
        line = raw.decode().rstrip("\n")
        if not line:
            if data:
                yield name, event_id, json.loads(data)
            name, event_id, data = "message", None, ""
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data += line[6:]


async def _berth(
    stack: Workload, *args: str, interrupt_after: bytes | None = None
) -> tuple[int, str, str]:
    """Run the ``berth`` CLI; with ``interrupt_after``, send Ctrl-C once stdout shows it."""
    env = {**os.environ, "BERTH_URL": stack.coordinator.url, "BERTH_TOKEN": stack.token,
           "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "berth"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        async with asyncio.timeout(scaled(30)):
            out = b""
            if interrupt_after is not None:
                while interrupt_after not in out:
                    line = await process.stdout.readline()
                    assert line, f"berth ended early: {out!r}"
                    out += line
                process.send_signal(signal.SIGINT)
            rest, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, (out + rest).decode(), err.decode()


async def test_history_tail_since_cursor_stderr_and_masking(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await deployed_workload(
        coordinator, admin_token, tmp_path / "agent", NUMBERED, secrets={"API_KEY": SECRET}
    )
    try:

        async def printed() -> bool:
            status, body = await _logs(stack, "tailLines=1")
            return status == 200 and bool(body["logs"]) and body["logs"][-1]["message"] == "err"

        await eventually(printed, what="the container to print everything")

        status, body = await _logs(stack, "tailLines=10")
        assert status == 200, body
        messages = [line["message"] for line in body["logs"]]
        assert messages == [f"line-{i}" for i in range(493, 501)] + ["key=****", "err"]
        assert [line["stream"] for line in body["logs"]][-1] == "stderr"
        assert {line["stream"] for line in body["logs"][:-1]} == {"stdout"}
        assert [line["masked"] for line in body["logs"]] == [False] * 8 + [True, False]
        assert [line["sequence"] for line in body["logs"]] == list(range(1, 11))
        first = body["logs"][0]
        assert first["resourceId"] == stack.resource_id
        assert first["deploymentId"] == stack.deployments[-1] == body["deploymentId"]
        assert first["runtimeKind"] == "docker-container"
        assert body["nextCursor"] == body["logs"][-1]["cursor"]

        # Everything (502 lines) in order; the secret never leaves the coordinator unmasked.
        status, raw, _ = await coordinator.call(
            "GET", f"/resources/{stack.resource_id}/runtime-logs?tailLines=1000",
            token=admin_token,
        )  # fmt: skip
        assert status == 200
        assert SECRET not in json.dumps(raw)
        everything = raw["logs"]
        assert [line["message"] for line in everything[:500]] == [
            f"line-{i}" for i in range(1, 501)
        ]
        assert len(everything) == 502

        # A cursor pages forward: exactly the 50 lines after line 100.
        status, page = await _logs(stack, f"cursor={everything[99]['cursor']}&tailLines=50")
        assert status == 200, page
        assert [line["message"] for line in page["logs"]] == [f"line-{i}" for i in range(101, 151)]
        status, rest = await _logs(stack, f"cursor={page['nextCursor']}&tailLines=1000")
        assert [line["message"] for line in rest["logs"]][:2] == ["line-151", "line-152"]
        assert len(rest["logs"]) == 502 - 150

        # since: an ISO time keeps the lines at or after it; a relative age covers them all.
        since = everything[299]["timestamp"]
        status, after = await _logs(stack, f"since={since}&tailLines=1000")
        assert status == 200, after
        assert all(line["timestamp"] >= since[:26] for line in after["logs"])
        assert "line-300" in [line["message"] for line in after["logs"]]
        assert "line-250" not in [line["message"] for line in after["logs"]]
        status, recent = await _logs(stack, "since=10m&tailLines=1000")
        assert len(recent["logs"]) == 502
        status, future = await _logs(stack, "since=2999-01-01T00:00:00Z")
        assert (status, future.get("logs")) == (200, []), future

        # The SSE history (follow=false) from the very beginning ends with history-complete.
        seen: list[str] = []
        async with _sse(stack, "follow=false&cursor=c1") as response:
            async for name, event_id, data in _events(response):
                if name == "runtime-logs":
                    seen.extend(line["message"] for line in data["logs"])
                    assert event_id == data["logs"][-1]["cursor"]
                elif name == "end":
                    assert data["reason"] == "history-complete"
                    break
        assert seen[:500] == [f"line-{i}" for i in range(1, 501)]
        assert seen[500:] == ["key=****", "err"]

        # The CLI prints the same lines (masked), and follows until Ctrl-C.
        code, out, err = await _berth(stack, "logs", stack.resource_id, "--tail", "3")
        assert code == 0, err
        assert [line.split(" ", 1)[1] for line in out.splitlines()] == [
            "line-500", "key=****", "err",
        ]  # fmt: skip
        code, out, err = await _berth(stack, "logs", stack.resource_id, "-f", "--tail", "2",
                                      interrupt_after=b"err")  # fmt: skip
        assert code == 130, err
        assert "Traceback" not in err
        assert [line.split(" ", 1)[1] for line in out.splitlines()] == ["key=****", "err"]

        # Bad input is refused with the error envelope; unknown resources are 404.
        for query in ("tailLines=5000", "tailLines=-1", "since=yesterday", "cursor=bogus"):
            status, refused = await _logs(stack, query)
            assert status == 400, (query, refused)
            assert refused["error"]["code"]
        status, missing, _ = await coordinator.call(
            "GET", "/resources/res_missing/runtime-logs", token=admin_token
        )
        assert status == 404, missing

        # Without its agent the server cannot be asked: 503 with the error envelope.
        await stack.agent.stop()

        async def offline() -> bool:
            return await coordinator.agent_status(admin_token, stack.server_id) != "online"

        await eventually(offline, what="the agent to go offline")
        status, refused = await _logs(stack, "tailLines=5")
        assert status == 503, refused
        assert refused["error"]["retriable"] is True
    finally:
        await stack.agent.stop()


def _tick(message: str) -> int:
    assert message.startswith("tick-"), message
    return int(message.removeprefix("tick-"))


async def _read_ticks(response: aiohttp.ClientResponse, ticks: list[int], until: int) -> str | None:
    """Append tick numbers until ``until`` of them arrived; return the last event id."""
    last_id = None
    async with asyncio.timeout(scaled(30)):
        async for name, event_id, data in _events(response):
            assert name == "runtime-logs", (name, data)
            ticks.extend(_tick(line["message"]) for line in data["logs"])
            last_id = event_id
            if len(ticks) >= until:
                break
    return last_id


async def test_follow_resumes_without_loss_or_repeats_and_ends_when_the_container_stops(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await deployed_workload(
        coordinator,
        admin_token,
        tmp_path / "agent",
        'i=0; while true; do i=$((i+1)); echo "tick-$i"; sleep 0.01; done',
    )
    try:
        ticks: list[int] = []
        async with _sse(stack, "cursor=c1") as response:
            last_id = await _read_ticks(response, ticks, 100)
        assert last_id is not None
        seen = ticks[-1]

        async def moved_on() -> bool:
            _, body = await _logs(stack, "tailLines=1")
            return _tick(body["logs"][-1]["message"]) > seen + 30

        await eventually(moved_on, what="lines to be printed while disconnected")
        async with _sse(stack, "", last_id=last_id) as response:
            await _read_ticks(response, ticks, 250)
            assert ticks == list(range(1, len(ticks) + 1))  # nothing lost, nothing repeated

            (container,) = stack.containers(docker_client)
            container.stop(timeout=1)
            async with asyncio.timeout(scaled(20)):
                async for name, _, data in _events(response):
                    if name == "runtime-logs":
                        ticks.extend(_tick(line["message"]) for line in data["logs"])
                    else:
                        assert name == "end", name
                        assert data["reason"] == "container-exited", data
                        break
        assert ticks == list(range(1, len(ticks) + 1))
    finally:
        await stack.agent.stop()


async def test_a_stalled_reader_drops_live_lines_and_blocks_no_other_stream(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await deployed_workload(
        coordinator,
        admin_token,
        tmp_path / "agent",
        'i=0; while true; do i=$((i+1)); seq 1 2000 | sed "s/^/burst-$i-/"; sleep 0.02; done',
    )
    try:

        async def burst() -> int:
            """The producer's current burst number (2 000 lines each)."""
            status, body = await _logs(stack, "tailLines=1")
            assert status == 200, body
            return int(body["logs"][-1]["message"].split("-")[1])

        async with _sse(stack, "tailLines=0") as stalled:
            # Not reading: the client's buffers fill, the coordinator stops granting credit
            # and the agent drops the oldest live lines of this stream only. Meanwhile other
            # streams of the same agent answer as usual.
            first = await burst()
            async with asyncio.timeout(scaled(60)):
                while await burst() < first + 100:  # 200k lines: far more than all buffers
                    async with asyncio.timeout(scaled(10)):  # never blocked by the stalled one
                        history: list[str] = []
                        async with _sse(stack, "follow=false&tailLines=1000") as fast:
                            async for name, _, data in _events(fast):
                                if name == "end":
                                    break
                                history.extend(line["message"] for line in data["logs"])
                    assert len(history) == 1000

            dropped = 0
            async with asyncio.timeout(scaled(30)):
                async for name, _, data in _events(stalled):
                    if name == "gap":
                        dropped = data["dropped"]
                        break
            assert dropped > 0
    finally:
        await stack.agent.stop()


async def test_following_deployments_picks_up_the_next_deployments_container(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await deployed_workload(
        coordinator,
        admin_token,
        tmp_path / "agent",
        'i=0; while true; do i=$((i+1)); echo "tick-$i"; sleep 0.05; done',
    )
    first = stack.deployments[-1]
    try:
        async with _sse(stack, "followDeployments=true&tailLines=0") as response:
            seen: list[tuple[str, str]] = []

            async def read_until(deployment_id: str) -> None:
                async for name, _, data in _events(response):
                    assert name == "runtime-logs", (name, data)
                    seen.extend((ln["deploymentId"], ln["message"]) for ln in data["logs"])
                    if any(d == deployment_id for d, _ in seen):
                        return

            async with asyncio.timeout(scaled(20)):
                await read_until(first)
            second = await stack.deploy()  # starts the new container, then stops the old one
            async with asyncio.timeout(scaled(30)):
                await read_until(second)
        assert seen[0][0] == first
        # The new container is read from its very first line.
        assert (second, "tick-1") in seen
    finally:
        await stack.agent.stop()
