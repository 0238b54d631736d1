"""Following a scheduled task run's output live in the console, in a real headless Chromium
against a real coordinator, agent, Docker and the busybox test image: *Run now* follows the new
run's stream; its first lines show while the run is still going, every line shows once in
order, and the end shows the exit code and failure code the API stores. Screenshots go to
artifacts/console/<test>/."""

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator
from tests.integration.stacks import deployed_workload
from tests.integration.test_console_pages import (
    _api,
    _signed_in,
    _unexpected,
    chromium_browser,
)

__all__ = ["chromium_browser"]

LINES = 8
# One line a second, then a failing exit: long enough to watch it arrive, short for a test.
COMMAND = f"sh -c 'for i in $(seq 1 {LINES}); do echo out-$i; sleep 1; done; exit 3'"


@pytest.mark.docker
@pytest.mark.timeout(240)
async def test_console_follows_a_task_run_live_to_its_exit_code(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await deployed_workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        task = await stack.call(
            "POST",
            "/scheduled-tasks",
            {"resourceId": stack.resource_id, "schedule": "@yearly", "commandIntent": COMMAND},
        )
        assert task["task"]["taskId"], task
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/resources/{stack.resource_id}/tasks")
        row = page.locator("#task-rows tbody tr").first
        await row.get_by_role("button", name=f"Run {COMMAND} now").click()

        # The first line arrives while the run is still going (the API says so), not at its end.
        output = page.locator("#run-logs")
        await expect(output.locator('span[data-sequence="1"]')).to_have_text(
            "out-1", timeout=90_000
        )
        run_id = (await page.locator("#run-rows tbody tr").first.get_attribute("data-run-id")) or ""
        shown = await _api(coordinator, admin_token, "GET", f"/scheduled-task-runs/{run_id}")
        assert shown["run"]["status"] in ("accepted", "running"), shown
        await expect(page.locator("#run-follow-state")).to_have_text("Following…")
        await page.screenshot(path=shots / "following.png", full_page=True)

        # The end: every line once, in order, then the run's exit code and failure code.
        result = page.locator("#run-result")
        await expect(result).to_have_attribute("data-exit-code", "3", timeout=60_000)
        await expect(page.locator("#run-follow-state")).to_have_text("Run ended.")
        spans = await output.locator("span").all_inner_texts()
        assert [s.strip() for s in spans] == [f"out-{i}" for i in range(1, LINES + 1)], spans
        shown = await _api(coordinator, admin_token, "GET", f"/scheduled-task-runs/{run_id}")
        assert shown["run"]["status"] == "failed", shown
        assert shown["run"]["exitCode"] == 3, shown
        await expect(result).to_have_attribute("data-status", "failed")
        await expect(result).to_contain_text("exit code 3")
        logs = await _api(
            coordinator,
            admin_token,
            "GET",
            f"/scheduled-task-runs/{run_id}/logs?resourceId={stack.resource_id}",
        )
        assert [e["message"] for e in logs["entries"]] == [s.strip() for s in spans]
        await expect(page.locator("#run-failure-code")).to_have_text("exit-nonzero")
        await expect(page.locator(f'#run-rows tr[data-run-id="{run_id}"]')).to_have_attribute(
            "data-status", "failed"
        )
        await page.screenshot(path=shots / "ended.png", full_page=True)
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
