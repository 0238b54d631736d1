"""``exec`` task runs end to end: a real coordinator and agent run the command with docker exec
in the resource's serving container (no task container), record its exit code, kill it at its
timeout, and fail it clearly when no container of the resource is running."""

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.harness import Coordinator, eventually, scaled
from tests.integration.stacks import Workload, deployed_workload

pytestmark = pytest.mark.docker

SECRET = "ex3c-Secret-Value-91"


async def _run_now(stack: Workload, task_id: str) -> dict[str, Any]:
    run = (await stack.call("POST", f"/scheduled-tasks/{task_id}/runs", {}))["run"]
    assert run["status"] == "accepted"

    async def ended() -> bool:
        shown = await stack.call("GET", f"/scheduled-task-runs/{run['runId']}")
        return shown["run"]["status"] in ("succeeded", "failed", "skipped")

    await eventually(ended, what=f"run {run['runId']} to end")
    return dict((await stack.call("GET", f"/scheduled-task-runs/{run['runId']}"))["run"])


async def test_an_exec_run_uses_the_serving_container_times_out_and_needs_one_running(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await deployed_workload(
        coordinator, admin_token, tmp_path / "agent", "sleep 3600", secrets={"API_KEY": SECRET}
    )
    try:
        [serving] = stack.containers(docker_client)
        body = {
            "resourceId": stack.resource_id,
            "schedule": "@yearly",
            "commandIntent": 'echo "host=$(hostname)"; echo "key=$API_KEY"; echo err >&2; exit 4',
            "timeoutSeconds": 30,
            "executionMode": "exec",
        }
        code, refused, _ = await coordinator.call(
            "POST",
            "/scheduled-tasks",
            token=admin_token,
            json={**body, "executionMode": "ssh"},
        )
        assert code == 400, refused
        assert set(refused) == {"error", "requestId"}
        task = (await stack.call("POST", "/scheduled-tasks", body))["task"]
        assert task["executionMode"] == "exec"
        task_id = task["taskId"]

        run = await _run_now(stack, task_id)
        assert (run["status"], run["exitCode"]) == ("failed", 4), run
        assert "status 4" in run["failureSummary"]
        assert run["failureCode"] == "exit-nonzero", run
        logs = await stack.call("GET", f"/scheduled-task-runs/{run['runId']}/logs")
        lines = {(e["stream"], e["message"]) for e in logs["entries"]}
        # The serving container's host name is its short id: the command ran inside it.
        assert ("stdout", f"host={serving.id[:12]}") in lines, lines
        keys = [message for _, message in lines if message.startswith("key=")]
        assert len(keys) == 1, keys
        assert SECRET not in keys[0], keys  # masked, as in fresh runs
        assert ("stderr", "err") in lines, lines
        task_containers = docker_client.containers.list(
            all=True, filters={"label": f"berth.task-id={task_id}"}
        )
        assert task_containers == []

        # A timeout kills the command; the serving container keeps running.
        await stack.call(
            "POST",
            f"/scheduled-tasks/{task_id}",
            {"commandIntent": "echo going; sleep 300", "timeoutSeconds": 2},
        )
        run = await _run_now(stack, task_id)
        assert run["status"] == "failed", run
        assert "timeout" in run["failureSummary"], run
        assert run["failureCode"] == "timed-out", run
        serving.reload()
        assert serving.status == "running"
        top = serving.top()
        assert not any("sleep 300" in " ".join(p) for p in top["Processes"]), top

        # berth run --exec: the same, one-off, streaming its output and exiting with its code.
        env = {**os.environ, "BERTH_URL": coordinator.url, "BERTH_TOKEN": admin_token,
               "NO_COLOR": "1"}  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "berth"), "run", "--exec", "app", "--",
            "echo in-$(hostname); exit 3",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        async with asyncio.timeout(scaled(60)):
            out, err = await process.communicate()
        assert process.returncode == 3, (out, err)
        assert out.decode().splitlines() == [f"in-{serving.id[:12]}"]

        # No running container: the run fails, saying why.
        serving.stop(timeout=1)
        run = await _run_now(stack, task_id)
        assert run["status"] == "failed", run
        assert run["failureSummary"].startswith("no-running-container"), run
        assert run["failureCode"] == "no-running-container", run
    finally:
        await stack.agent.stop()
