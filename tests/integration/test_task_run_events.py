"""Task run outcomes end to end: a real coordinator and agent run commands in Docker; each run
that succeeds, fails or times out is delivered as a signed webhook to a loopback receiver, and
the operator work ledger lists every run with its status and error, cancels one still going and
retries a failed one (a run stopped on purpose notifies nobody)."""

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from coordinator.db.notification_models import NotificationDelivery
from coordinator.notifications.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.harness import Coordinator, eventually
from tests.integration.stacks import Workload, deployed_workload

pytestmark = pytest.mark.docker

SIGNING_SECRET = "task-run-secret-0123456789"
EVENTS = [
    "scheduled-task-run.succeeded",
    "scheduled-task-run.failed",
    "scheduled-task-run.timed-out",
]


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    harness = Coordinator(
        tmp_path / "coordinator", database_url, allow_private_webhook_targets=True
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


async def _task(stack: Workload, command: str, timeout: int) -> str:
    body = {
        "resourceId": stack.resource_id,
        "schedule": "@yearly",
        "commandIntent": command,
        "timeoutSeconds": timeout,
        "status": "disabled",
    }
    return str((await stack.call("POST", "/scheduled-tasks", body))["task"]["taskId"])


async def _run(stack: Workload, task_id: str) -> str:
    return str((await stack.call("POST", f"/scheduled-tasks/{task_id}/runs", {}))["run"]["runId"])


async def _status(stack: Workload, run_id: str) -> str:
    return str((await stack.call("GET", f"/scheduled-task-runs/{run_id}"))["run"]["status"])


async def _ended(stack: Workload, run_id: str) -> None:
    async def done() -> bool:
        return await _status(stack, run_id) in ("succeeded", "failed", "skipped")

    await eventually(done, what=f"run {run_id} to end")


async def test_run_outcomes_are_notified_signed_and_listed_in_the_ledger(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/in", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    stack = await deployed_workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        sub = await stack.call(
            "POST",
            "/notification-subscriptions",
            {
                "name": "tasks",
                "channel": "webhook",
                "events": EVENTS,
                "url": f"http://127.0.0.1:{runner.addresses[0][1]}/in",
                "signingSecret": SIGNING_SECRET,
            },
        )
        fine = await _run(stack, await _task(stack, "echo fine", 60))
        slow = await _run(stack, await _task(stack, "echo slow; sleep 30", 1))
        long_task = await _task(stack, "echo long; sleep 300", 300)
        going = await _run(stack, long_task)
        await _ended(stack, fine)
        await _ended(stack, slow)

        def events() -> list[tuple[str, str]]:
            found = []
            for headers, body in received:
                verdict = verify(
                    SIGNING_SECRET, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
                )
                assert verdict.valid, verdict
                payload = json.loads(body)
                found.append((payload["eventType"], payload["subject"]["runId"]))
            return found

        expected = {
            ("scheduled-task-run.succeeded", fine),
            ("scheduled-task-run.failed", slow),
            ("scheduled-task-run.timed-out", slow),
        }

        async def delivered() -> bool:
            return expected <= set(events())

        await eventually(delivered, what="the three task-run webhooks")
        [failed_body] = [
            json.loads(b) for _, b in received if json.loads(b)["eventType"].endswith(".failed")
        ]
        assert failed_body["data"]["ended"] == "timed-out"
        assert "timeout" in failed_body["data"]["failureSummary"]
        assert failed_body["data"]["failureCode"] == "timed-out"
        assert failed_body["subject"]["resourceId"] == stack.resource_id

        # The ledger lists each run with its kind, status and error.
        listed = await stack.call("GET", "/operator-work?kind=scheduled-task-run")
        by_id = {item["id"]: item for item in listed["items"]}
        assert by_id[fine]["status"] == "succeeded"
        assert by_id[fine]["kind"] == "scheduled-task-run"
        assert (by_id[slow]["status"], by_id[slow]["errorCode"]) == ("failed", "timed-out")
        assert by_id[slow]["retriable"] is True
        assert by_id[slow]["nextActions"] == ["retry"]
        assert by_id[slow]["resourceId"] == stack.resource_id
        assert by_id[going]["status"] in ("pending", "running")

        # Cancel the run still going: stopped, and nobody is told it failed.
        async def running() -> bool:
            return await _status(stack, going) == "running"

        await eventually(running, what="the long run to start")
        canceled = await stack.call("POST", f"/operator-work/{going}/cancel", {"reason": "test"})
        assert canceled["status"] == "canceled"
        await _ended(stack, going)
        shown = (await stack.call("GET", f"/scheduled-task-runs/{going}"))["run"]
        assert shown["status"] == "failed"
        assert "stopped" in shown["failureSummary"]
        assert shown["failureCode"] == "stopped"

        # Refusals: the envelope, nothing changed.
        for path, body in (
            (f"/operator-work/{fine}/cancel", {}),
            (f"/operator-work/{fine}/retry", {}),
            (f"/operator-work/{slow}/dead-letter", {"reason": "no"}),
        ):
            code, answer, _ = await coordinator.call("POST", path, token=admin_token, json=body)
            assert code == 409, (path, code, answer)
            assert set(answer) == {"error", "requestId"}

        # Retry the timed-out run: a new manual run of the same task.
        retried = await stack.call("POST", f"/operator-work/{slow}/retry", {})
        assert retried["retryOfWorkId"] == slow
        again = (await stack.call("GET", f"/scheduled-task-runs/{retried['workId']}"))["run"]
        assert again["triggerKind"] == "manual"
        await _ended(stack, retried["workId"])

        async def retry_told() -> bool:
            return ("scheduled-task-run.timed-out", retried["workId"]) in set(events())

        await eventually(retry_told, what="the retried run's webhook")
        # Once per event and subscription; the canceled run said nothing.
        assert not [e for e in events() if e[1] == going]
        assert await NotificationDelivery.filter(event_id__contains=going).count() == 0
        assert len(events()) == len(set(events()))
        rows = await NotificationDelivery.filter(subscription_id=sub["id"]).count()
        assert rows == len(events())
    finally:
        await stack.agent.stop()
        await runner.cleanup()
