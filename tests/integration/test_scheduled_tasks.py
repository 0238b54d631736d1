"""Scheduled tasks end to end: a real coordinator and agent run each task in a fresh Docker
container from the resource's deployed image, driven by a test clock instead of minutes of
sleeping (the scheduler's ``clock`` and ``tick``)."""

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import pytest

from coordinator.db.task_models import ScheduledTask
from coordinator.scheduling import SCHEDULER_KEY, TaskScheduler
from tests.harness import Coordinator, eventually, scaled
from tests.integration.stacks import Workload, workload

pytestmark = pytest.mark.docker

SECRET = "t4sk-Secret-Value-77"
WAIT_FOR_GO = "echo begin; until [ -e /tmp/go ]; do sleep 0.2; done; echo end; exit 7"


class HandClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _scheduler(coordinator: Coordinator, clock: HandClock) -> TaskScheduler:
    scheduler = coordinator.app[SCHEDULER_KEY]
    scheduler.clock = clock
    scheduler.retry_base_seconds = 0.5
    return scheduler


async def _runs(stack: Workload, task_id: str) -> list[dict[str, Any]]:
    answer = await stack.call("GET", f"/scheduled-task-runs?taskId={task_id}")
    return list(reversed(answer["items"]))  # oldest first


async def _logs(stack: Workload, run_id: str) -> list[dict[str, Any]]:
    answer = await stack.call("GET", f"/scheduled-task-runs/{run_id}/logs")
    return list(answer["entries"])


async def _berth(stack: Workload, *args: str) -> tuple[int, str, str]:
    """Run the ``berth`` CLI against the stack's coordinator."""
    env = {**os.environ, "BERTH_URL": stack.coordinator.url, "BERTH_TOKEN": stack.token,
           "NO_COLOR": "1"}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "berth"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        async with asyncio.timeout(scaled(60)):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _task_containers(client: docker.DockerClient, run_id: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"berth.task-run-id={run_id}"}))


async def _refused(stack: Workload, body: dict[str, Any], status: int) -> dict[str, Any]:
    code, answer, _ = await stack.coordinator.call(
        "POST", "/scheduled-tasks", token=stack.token, json=body
    )
    assert code == status, (body, code, answer)
    assert set(answer) == {"error", "requestId"}, answer
    assert answer["error"]["code"], answer
    return dict(answer)


async def test_a_slot_fires_once_in_a_fresh_container_with_env_and_retries(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(
        coordinator, admin_token, tmp_path / "agent", "sleep 3600", secrets={"API_KEY": SECRET}
    )
    try:
        task = {
            "resourceId": stack.resource_id,
            "schedule": "* * * * *",
            "timezone": "Europe/Paris",
            "commandIntent": 'echo "key=$API_KEY"; echo to-stderr >&2; exit 3',
            "timeoutSeconds": 60,
            "retryLimit": 1,
        }
        # Never deployed: nothing to run the task from.
        refused = await _refused(stack, task, 409)
        assert "deploy" in refused["error"]["message"]
        await stack.deploy()
        await _refused(stack, {**task, "schedule": "61 * * * *"}, 400)
        await _refused(stack, {**task, "schedule": "* * * *"}, 400)
        await _refused(stack, {**task, "schedule": "@sometimes"}, 400)
        await _refused(stack, {**task, "timezone": "Mars/Olympus"}, 400)
        await _refused(stack, {**task, "timeoutSeconds": 0}, 400)
        assert (await stack.call("GET", "/scheduled-tasks"))["items"] == []

        created = (await stack.call("POST", "/scheduled-tasks", task))["task"]
        assert created["status"] == "enabled"
        assert created["concurrencyPolicy"] == "forbid"
        slot = datetime.fromisoformat(created["nextRunAt"])
        assert slot.second == 0
        assert slot > datetime.now(UTC)
        clock = HandClock(slot - timedelta(seconds=1))
        scheduler = _scheduler(coordinator, clock)
        await scheduler.tick()
        assert await _runs(stack, created["taskId"]) == []

        clock.now = slot + timedelta(milliseconds=300)
        scheduler.wake()

        async def failed_with_a_retry_waiting() -> bool:
            runs = await _runs(stack, created["taskId"])
            return [r["status"] for r in runs] == ["failed", "accepted"]

        await eventually(failed_with_a_retry_waiting, timeout=60, what="the run to fail")
        # The retry waits out its backoff (0.5 s on the scheduler's clock).
        await scheduler.tick()
        assert [r["status"] for r in await _runs(stack, created["taskId"])] == [
            "failed",
            "accepted",
        ]
        clock.now += timedelta(seconds=0.6)
        scheduler.wake()

        async def retried_and_failed() -> bool:
            runs = await _runs(stack, created["taskId"])
            return len(runs) == 2 and all(r["status"] == "failed" for r in runs)

        await eventually(retried_and_failed, timeout=60, what="the retry to fail too")
        first, retry = await _runs(stack, created["taskId"])
        assert (first["attempt"], retry["attempt"]) == (0, 1)
        assert first["triggerKind"] == retry["triggerKind"] == "scheduled"
        assert datetime.fromisoformat(first["slotAt"]) == slot
        assert first["exitCode"] == retry["exitCode"] == 3
        assert "status 3" in first["failureSummary"]
        assert first["failureCode"] == retry["failureCode"] == "exit-nonzero"
        entries = await _logs(stack, first["runId"])
        # Two streams: their relative order is whatever Docker delivered.
        assert sorted((e["stream"], e["message"]) for e in entries) == [
            ("stderr", "to-stderr"),
            ("stdout", "key=****"),
        ]
        assert [e["sequence"] for e in entries] == [1, 2]
        # Its own log: the resource's runtime log does not carry it.
        runtime = await stack.call("GET", f"/resources/{stack.resource_id}/runtime-logs")
        assert "to-stderr" not in str(runtime)
        # Each run's container is gone; the serving container is untouched.
        assert _task_containers(docker_client, first["runId"]) == []
        assert _task_containers(docker_client, retry["runId"]) == []
        assert len(stack.containers(docker_client)) == 1

        # The slot fires once: ticking again, a crash that left the slot "due", and a
        # coordinator restart at the same instant add nothing.
        await scheduler.tick()
        await ScheduledTask.filter(id=created["taskId"]).update(next_slot_at=slot)
        await scheduler.tick()
        await coordinator.restart()
        scheduler = _scheduler(coordinator, clock)
        await scheduler.tick()
        assert len(await _runs(stack, created["taskId"])) == 2
        shown = (await stack.call("GET", f"/scheduled-tasks/{created['taskId']}"))["task"]
        assert datetime.fromisoformat(shown["nextRunAt"]) == slot + timedelta(minutes=1)
        assert shown["latestRun"]["runId"] == retry["runId"]

        audit = await stack.call("GET", f"/audit-events?aggregateId={created['taskId']}")
        kinds = [event["eventType"] for event in audit["items"]]
        # The API's mutations are audited; the scheduler's own work is the run history.
        assert kinds == ["scheduled-task.created"]
    finally:
        await stack.agent.stop()


async def test_forbid_skips_an_overlap_replace_stops_the_old_run_and_timeout_kills(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        await stack.deploy()
        created = (
            await stack.call(
                "POST",
                "/scheduled-tasks",
                {
                    "resourceId": stack.resource_id,
                    "schedule": "*/5 * * * *",
                    "timezone": "UTC",
                    "commandIntent": "echo started; sleep 300",
                    "timeoutSeconds": 4,
                },
            )
        )["task"]
        task_id = created["taskId"]
        slot = datetime.fromisoformat(created["nextRunAt"])
        clock = HandClock(slot + timedelta(seconds=1))
        scheduler = _scheduler(coordinator, clock)
        scheduler.wake()

        async def running(count: int) -> bool:
            runs = await _runs(stack, task_id)
            return len(runs) == count and runs[-1]["status"] == "running"

        await eventually(lambda: running(1), what="the first run to start")
        # The next slot while it still runs: forbid records a skip.
        clock.now = slot + timedelta(minutes=5, seconds=1)
        await scheduler.tick()
        runs = await _runs(stack, task_id)
        assert [r["status"] for r in runs] == ["running", "skipped"]
        assert runs[1]["skippedReason"] == "concurrency-forbidden"

        # The timeout kills the first run.
        async def timed_out() -> bool:
            return bool((await _runs(stack, task_id))[0]["status"] == "failed")

        await eventually(timed_out, what="the timeout to kill the run")
        first = (await _runs(stack, task_id))[0]
        assert "timeout" in first["failureSummary"]
        assert first["failureCode"] == "timed-out"
        assert runs[1]["failureCode"] is None  # skipped, not failed
        assert _task_containers(docker_client, first["runId"]) == []
        assert [e["message"] for e in await _logs(stack, first["runId"])] == ["started"]

        # replace: a run going when the next slot comes is stopped for the new one.
        await stack.call(
            "POST",
            f"/scheduled-tasks/{task_id}",
            {
                "resourceId": stack.resource_id,
                "concurrencyPolicy": "replace",
                "timeoutSeconds": 300,
            },
        )
        now_run = (await stack.call("POST", f"/scheduled-tasks/{task_id}/runs", {}))["run"]
        assert (now_run["status"], now_run["triggerKind"]) == ("accepted", "manual")
        await eventually(lambda: running(3), what="the manual run to start")
        clock.now = slot + timedelta(minutes=10, seconds=1)
        await scheduler.tick()

        async def replaced() -> bool:
            runs = await _runs(stack, task_id)
            return (
                len(runs) == 4 and runs[2]["status"] == "failed" and runs[3]["status"] == "running"
            )

        await eventually(replaced, what="the old run stopped and the new one running")
        old = (await _runs(stack, task_id))[2]
        assert "stopped" in old["failureSummary"]
        assert old["failureCode"] == "stopped"
        assert _task_containers(docker_client, old["runId"]) == []

        # Deleting the task stops its run; the history stays.
        deleted = await stack.call("DELETE", f"/scheduled-tasks/{task_id}", {})
        assert deleted["status"] == "deleted"

        async def all_ended() -> bool:
            return all(
                r["status"] not in ("accepted", "running") for r in await _runs(stack, task_id)
            )

        await eventually(all_ended, what="the last run to be stopped")
        assert (
            docker_client.containers.list(all=True, filters={"label": f"berth.task-id={task_id}"})
            == []
        )
        code, _, _ = await coordinator.call("GET", f"/scheduled-tasks/{task_id}", token=admin_token)
        assert code == 404
    finally:
        await stack.agent.stop()


async def test_a_run_that_ends_while_the_coordinator_is_away_is_reported_on_reconnect(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        await stack.deploy()
        answer = await stack.call(
            "POST",
            f"/resources/{stack.resource_id}/one-off-runs",
            {"commandIntent": WAIT_FOR_GO},
        )
        run_id = answer["run"]["runId"]

        async def started() -> bool:
            shown = await stack.call("GET", f"/scheduled-task-runs/{run_id}")
            return bool(shown["run"]["status"] == "running")

        await eventually(started, what="the one-off run to start")
        await coordinator.stop()
        # Let the command finish while the link is down.
        (container,) = _task_containers(docker_client, run_id)
        container.exec_run(["/bin/sh", "-c", "touch /tmp/go"])

        async def removed() -> bool:
            return _task_containers(docker_client, run_id) == []

        await eventually(removed, what="the run to end and its container to go")
        await coordinator.start()

        async def reported() -> bool:
            shown = await stack.call("GET", f"/scheduled-task-runs/{run_id}")
            return bool(shown["run"]["status"] == "failed")

        await eventually(
            reported, timeout=60, what="the agent to report the run after reconnecting"
        )
        shown = (await stack.call("GET", f"/scheduled-task-runs/{run_id}"))["run"]
        assert shown["exitCode"] == 7
        assert shown["failureCode"] == "exit-nonzero"
        assert [e["message"] for e in await _logs(stack, run_id)] == ["begin", "end"]
        # One-off tasks are not listed with the scheduled ones.
        assert (await stack.call("GET", "/scheduled-tasks"))["items"] == []

        # berth run: output as it comes, the command's exit code as its own.
        code, out, err = await _berth(
            stack, "run", stack.resource_id, "--", 'echo "pid $$"; echo oops >&2; exit 4'
        )
        assert code == 4, (out, err)
        assert out == "pid 1\n"
        assert "oops" in err
        code, out, err = await _berth(stack, "run", stack.resource_id, "--", "true")
        assert (code, out) == (0, ""), err
        # berth tasks runs: each failed run says why in its FAILURE column.
        code, out, err = await _berth(stack, "tasks", "runs")
        assert code == 0, err
        header, *rows = out.splitlines()
        assert header.split()[-1] == "FAILURE", out
        failed = [row for row in rows if " failed " in row]
        assert len(failed) == 2, out
        assert all(row.split()[-1] == "exit-nonzero" for row in failed), out

        # berth tasks: create, list, run now, follow its logs.
        code, out, err = await _berth(
            stack, "tasks", "create", stack.resource_id, "@daily", "--", "echo from-cli"
        )
        assert code == 0, err
        assert "Created task tsk_" in out
        code, out, err = await _berth(stack, "--json", "tasks", "list")
        (listed,) = json.loads(out)["items"]
        assert listed["schedule"] == "@daily"
        code, out, err = await _berth(stack, "--json", "tasks", "run", listed["taskId"])
        run = json.loads(out)["run"]
        code, out, err = await _berth(stack, "tasks", "logs", run["runId"], "-f")
        assert (code, out) == (0, "from-cli\n"), err
    finally:
        await stack.agent.stop()


async def test_an_agent_killed_mid_run_removes_the_container_and_the_run_fails_as_lost(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        await stack.deploy()
        answer = await stack.call(
            "POST", f"/resources/{stack.resource_id}/one-off-runs", {"commandIntent": "sleep 300"}
        )
        run_id = answer["run"]["runId"]

        async def started() -> bool:
            shown = await stack.call("GET", f"/scheduled-task-runs/{run_id}")
            return bool(shown["run"]["status"] == "running")

        await eventually(started, what="the run to start")
        process = stack.agent.process
        assert process is not None
        process.kill()
        await process.wait()
        assert len(_task_containers(docker_client, run_id)) == 1
        await stack.agent.start()

        async def settled() -> bool:
            shown = await stack.call("GET", f"/scheduled-task-runs/{run_id}")
            return bool(shown["run"]["status"] == "failed")

        await eventually(settled, timeout=60, what="the lost run to be recorded failed")
        shown = (await stack.call("GET", f"/scheduled-task-runs/{run_id}"))["run"]
        assert "lost" in shown["failureSummary"]
        assert shown["failureCode"] == "agent-lost"

        async def removed() -> bool:
            return _task_containers(docker_client, run_id) == []

        await eventually(removed, what="the restarted agent to remove the leftover container")
    finally:
        await stack.agent.stop()
