"""A task run's live log stream end to end: a real coordinator and agent run the command in a
fresh Docker container while a reader follows ``/scheduled-task-runs/{id}/logs/stream``, drops
the connection, resumes with ``Last-Event-ID`` (nothing lost or repeated), and gets the end
frame with the run's status and exit code; ``berth tasks logs -f`` prints the same lines."""

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from coordinator.client.sse import SseEvent, SseParser
from tests.harness import Coordinator, scaled
from tests.integration.stacks import Workload, deployed_workload

pytestmark = pytest.mark.docker

SECRET = "str3am-Secret-Value-42"
COMMAND = (
    'for i in 1 2 3 4 5 6; do echo "tick $i"; sleep 0.4; done; echo "key=$API_KEY" >&2; exit 5'
)


@asynccontextmanager
async def _stream(
    stack: Workload, run_id: str, query: str = "", last_id: str | None = None
) -> AsyncIterator[AsyncIterator[SseEvent]]:
    headers = {"Authorization": f"Bearer {stack.token}", "Accept": "text/event-stream"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    url = f"{stack.coordinator.url}/scheduled-task-runs/{run_id}/logs/stream?{query}"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http,
        http.get(url, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")

        async def frames() -> AsyncIterator[SseEvent]:
            parser = SseParser()
            async for chunk in response.content.iter_any():
                for event in parser.feed(chunk.decode()):
                    yield event

        yield frames()


async def _read(frames: AsyncIterator[SseEvent], lines: int | None) -> list[SseEvent]:
    """Frames until ``lines`` log lines arrived (None: until the end frame)."""
    found: list[SseEvent] = []
    async with asyncio.timeout(scaled(60)):
        async for frame in frames:
            found.append(frame)
            if frame.event == "end":
                break
            if lines is not None and len(found) == lines:
                break
    return found


async def test_a_followed_run_resumes_without_loss_and_ends_with_its_exit_code(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    stack = await deployed_workload(
        coordinator, admin_token, tmp_path / "agent", "sleep 3600", secrets={"API_KEY": SECRET}
    )
    try:
        task = (
            await stack.call(
                "POST",
                "/scheduled-tasks",
                {
                    "resourceId": stack.resource_id,
                    "schedule": "@yearly",
                    "commandIntent": COMMAND,
                    "timeoutSeconds": 60,
                    "status": "disabled",
                },
            )
        )["task"]
        run = (await stack.call("POST", f"/scheduled-tasks/{task['taskId']}/runs", {}))["run"]
        run_id = run["runId"]

        # Follow from the start, hang up after two lines (the run is still going).
        async with _stream(stack, run_id) as frames:
            first = await _read(frames, 2)
        assert [f.event for f in first] == ["task-run-log", "task-run-log"]
        assert [f.id for f in first] == ["1", "2"]
        # Resume with Last-Event-ID: the rest, then the end frame.
        async with _stream(stack, run_id, last_id=first[-1].id) as frames:
            rest = await _read(frames, None)
        assert rest[-1].event == "end"
        end = json.loads(rest[-1].data)
        assert (end["runId"], end["status"], end["exitCode"]) == (run_id, "failed", 5), end
        assert "status 5" in end["failureSummary"]
        assert end["failureCode"] == "exit-nonzero", end
        lines = [json.loads(f.data) for f in first + rest[:-1]]
        assert [line["sequence"] for line in lines] == list(range(1, 8))
        assert [line["message"] for line in lines[:6]] == [f"tick {i}" for i in range(1, 7)]
        assert lines[6]["stream"] == "stderr"
        assert lines[6]["message"].startswith("key=")
        assert SECRET not in lines[6]["message"]
        assert [f.id for f in rest[:-1]] == [str(i) for i in range(3, 8)]

        # A finished run: ?cursor= skips the lines read; the end frame follows at once.
        async with _stream(stack, run_id, query="cursor=6") as frames:
            tail = await _read(frames, None)
        assert [f.event for f in tail] == ["task-run-log", "end"]
        assert json.loads(tail[0].data)["sequence"] == 7

        # Bad input and unknown runs: the envelope, never a stream.
        for path, status in (
            (f"/scheduled-task-runs/{run_id}/logs/stream?untilFinished=maybe", 400),
            ("/scheduled-task-runs/tkr_unknown0000000000/logs/stream", 404),
        ):
            code, answer, _ = await coordinator.call("GET", path, token=admin_token)
            assert code == status, (path, code, answer)
            assert set(answer) == {"error", "requestId"}, answer

        # The CLI follows the same stream.
        env = {**os.environ, "BERTH_URL": coordinator.url, "BERTH_TOKEN": admin_token,
               "NO_COLOR": "1"}  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "berth"), "tasks", "logs", "-f", run_id,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        async with asyncio.timeout(scaled(60)):
            out, err = await process.communicate()
        assert process.returncode == 0, err
        assert out.decode().splitlines() == [f"tick {i}" for i in range(1, 7)]
        assert err.decode().startswith("key=")
        assert SECRET not in err.decode()
    finally:
        await stack.agent.stop()
