"""The operator work and retention pages in a real headless Chromium against a real coordinator,
agent and Docker: a task run that really failed in its container is listed with its error code
and only the Retry its nextActions offer; a viewer's Retry shows the API's 403 and starts
nothing; the owner's Retry starts a new run (read back through the API); a running run offers
only Cancel, which stops it; an unknown work id shows the 404. A retention policy saved on the
page is read back through the API, a viewer's save shows the 403, and the scheduled prune's real
report is shown after a pass. Screenshots go to artifacts/console/<test>/."""

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from coordinator import retention
from tests.browser import artifacts_dir
from tests.harness import Coordinator, eventually
from tests.integration.stacks import Workload, deployed_workload
from tests.integration.test_console_browser import _new_page
from tests.integration.test_console_pages import (
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)
from tests.unit.coordinator.test_organizations_api import PASSWORD, _join

__all__ = ["chromium_browser"]

CATEGORY = "scheduled-task-run-logs"


async def _start(stack: Workload, command: str, timeout: int) -> str:
    """A manual run of a new (disabled) task running ``command``."""
    task = await stack.call(
        "POST",
        "/scheduled-tasks",
        {
            "resourceId": stack.resource_id,
            "schedule": "@yearly",
            "commandIntent": command,
            "timeoutSeconds": timeout,
            "status": "disabled",
        },
    )
    run = await stack.call("POST", f"/scheduled-tasks/{task['task']['taskId']}/runs", {})
    return str(run["run"]["runId"])


async def _failed_run(stack: Workload) -> str:
    run_id = await _start(stack, "echo broken; exit 3", 60)

    async def failed() -> bool:
        shown = await stack.call("GET", f"/scheduled-task-runs/{run_id}")
        return bool(shown["run"]["status"] == "failed")

    await eventually(failed, what=f"run {run_id} to fail")
    return run_id


async def _task_runs(stack: Workload) -> list[dict[str, Any]]:
    body = await stack.call("GET", "/operator-work?kind=scheduled-task-run")
    return list(body["items"])


async def _password_sign_in(page: Page, coordinator: Coordinator, email: str) -> None:
    await page.goto(coordinator.url + "/console/")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(coordinator.url + "/console/servers")


@pytest.mark.docker
@pytest.mark.timeout(300)
async def test_console_retries_failed_work_and_sets_a_retention_policy(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await deployed_workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        run_id = await _failed_run(stack)
        viewer_problems: list[str] = []
        viewer = await _new_page(chromium_browser, viewer_problems)
        await _join(coordinator, admin_token, "vic@example.com", "viewer")
        await _password_sign_in(viewer, coordinator, "vic@example.com")
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)

        # Filtered to failed task runs: the real failure, and only the action it offers.
        await page.goto(f"{coordinator.url}/console/operator-work")
        await page.get_by_label("Kind").select_option("scheduled-task-run")
        await page.get_by_label("Status").select_option("failed")
        await page.get_by_role("button", name="Filter").click()
        await expect(page).to_have_url(
            f"{coordinator.url}/console/operator-work?kind=scheduled-task-run&status=failed"
        )
        row = page.locator(f'tr[data-work-id="{run_id}"]')
        await expect(row).to_contain_text("exit-nonzero")
        await expect(row.locator(".work-status")).to_have_text("failed")
        await expect(row.get_by_role("button")).to_have_count(1)
        await expect(row.get_by_role("button", name=f"Retry {run_id}")).to_be_visible()
        await page.screenshot(path=shots / "failed-run.png", full_page=True)

        # A viewer sees the same offer, but the API refuses it: the 403 is shown, nothing runs.
        await viewer.goto(
            f"{coordinator.url}/console/operator-work?kind=scheduled-task-run&status=failed"
        )
        await viewer.get_by_role("button", name=f"Retry {run_id}").click()
        await expect(viewer.locator("#work-status-line [role=alert]")).to_contain_text(
            "operator-work:write"
        )
        assert len(await _task_runs(stack)) == 1

        # The owner's Retry starts a new run of the task, listed by the API as retrying it.
        await row.get_by_role("button", name=f"Retry {run_id}").click()
        await expect(page.locator("#work-status-line")).to_contain_text("Retried as")
        runs = await _task_runs(stack)
        assert len(runs) == 2
        retried = next(r for r in runs if r["id"] != run_id)
        await expect(page.locator("#work-status-line")).to_contain_text(retried["id"])

        # A run still going offers only Cancel; confirmed, the API reports it canceled.
        going = await _start(stack, "echo long; sleep 300", 300)

        async def running() -> bool:
            shown = await stack.call("GET", f"/scheduled-task-runs/{going}")
            return bool(shown["run"]["status"] == "running")

        await eventually(running, what=f"run {going} to start")
        await page.goto(f"{coordinator.url}/console/operator-work?kind=scheduled-task-run")
        going_row = page.locator(f'tr[data-work-id="{going}"]')
        await expect(going_row.get_by_role("button")).to_have_count(1)
        await going_row.get_by_role("button", name=f"Cancel {going}").click()
        await expect(page.locator("#work-status-line")).to_contain_text(f"{going}: canceled")

        async def stopped() -> bool:
            shown = await stack.call("GET", f"/operator-work/{going}")
            return bool(shown["item"]["errorCode"] == "stopped")

        # The agent stops the run's process after the answer: the run ends as stopped.
        await eventually(stopped, what=f"run {going} to be stopped")

        # An unknown id: the API's 404 in the page.
        await page.get_by_label("Work id").fill("run_unknown0000")
        await page.get_by_role("button", name="Show").click()
        await expect(page.locator("#work-shown [role=alert]")).to_contain_text("not found")
        await _fits_phone(page, shots / "phone-operator-work.png")

        # Retention: saved on the page, read back through the API.
        await page.goto(f"{coordinator.url}/console/retention")
        policy = page.locator(f'form[data-category="{CATEGORY}"]')
        await expect(policy.locator("[data-last-run]")).to_have_attribute("data-last-run", "none")
        await policy.get_by_label("Keep days").fill("12")
        await policy.get_by_label("Scheduled dry run").check()
        await policy.get_by_label("Scheduled removal").uncheck()
        await policy.get_by_role("button", name="Save").click()
        await expect(policy.get_by_role("status")).to_contain_text("Saved.")
        stored = (await stack.call("GET", f"/retention-defaults/{CATEGORY}"))["policy"]
        assert stored["retentionDays"] == 12
        assert stored["enabled"] is True
        assert stored["dryRunSchedulingEnabled"] is True
        assert stored["destructiveSchedulingEnabled"] is False

        # A viewer's save is refused with the 403 and changes nothing.
        await viewer.goto(f"{coordinator.url}/console/retention")
        refused = viewer.locator(f'form[data-category="{CATEGORY}"]')
        await expect(refused.get_by_label("Keep days")).to_have_value("12")
        await refused.get_by_label("Keep days").fill("3")
        await refused.get_by_role("button", name="Save").click()
        await expect(refused.get_by_role("alert")).to_contain_text("retention-defaults:write")
        stored = (await stack.call("GET", f"/retention-defaults/{CATEGORY}"))["policy"]
        assert stored["retentionDays"] == 12

        # One pass of the scheduled prune (dry run, as configured): its report is on the page.
        assert await retention.run_once() >= 1
        await page.reload()
        report = policy.locator('[data-last-run="report"]')
        await expect(report).to_contain_text("dryRun: true")
        await expect(report).to_contain_text("matchedCount")
        await page.screenshot(path=shots / "retention.png", full_page=True)
        await _fits_phone(page, shots / "phone-retention.png")
        assert _unexpected(problems) == []
        assert _unexpected(viewer_problems) == []
    finally:
        await stack.agent.stop()
