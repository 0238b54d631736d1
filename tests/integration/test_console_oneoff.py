"""A one-off command from the resource page (what ``berth run RES -- CMD`` does), in a real
headless Chromium against a real coordinator, agent, Docker and the busybox test image: the form
starts the run in a fresh container, its output shows live while the run is still going, every
line once and in order, and the end shows the exit code the API stores. Screenshots go to
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

LINES = 6
# One line a second, then exit 7: long enough to see it arrive while running, short for a test.
COMMAND = f"sh -c 'for i in $(seq 1 {LINES}); do echo one-$i; sleep 1; done; exit 7'"


@pytest.mark.docker
@pytest.mark.timeout(240)
async def test_console_runs_a_one_off_command_and_follows_it_to_its_exit_code(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await deployed_workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/resources/{stack.resource_id}")
        form = page.get_by_role("form", name="Run a command")
        await form.get_by_label("Command").fill(COMMAND)
        await form.get_by_label("Timeout (seconds)").fill("120")
        await form.get_by_role("button", name="Run").click()
        started = form.get_by_text("started.")
        await expect(started).to_be_visible(timeout=30_000)
        run_id = ((await started.inner_text()).split())[1]

        # The first line arrives while the run is still going (the API says so), not at its end.
        output = page.locator("#oneoff-logs")
        await expect(output.locator('span[data-sequence="1"]')).to_have_text(
            "one-1", timeout=90_000
        )
        shown = await _api(coordinator, admin_token, "GET", f"/scheduled-task-runs/{run_id}")
        assert shown["run"]["status"] in ("accepted", "running"), shown
        assert shown["run"]["resourceId"] == stack.resource_id, shown
        await expect(page.locator("#oneoff-follow-state")).to_have_text("Following…")
        await page.screenshot(path=shots / "following.png", full_page=True)

        # The end: every line once, in order, then the exit code the API stores.
        result = page.locator("#oneoff-result")
        await expect(result).to_have_attribute("data-exit-code", "7", timeout=60_000)
        await expect(page.locator("#oneoff-follow-state")).to_have_text("Run ended.")
        spans = await output.locator("span").all_inner_texts()
        assert [s.strip() for s in spans] == [f"one-{i}" for i in range(1, LINES + 1)], spans
        shown = await _api(coordinator, admin_token, "GET", f"/scheduled-task-runs/{run_id}")
        assert shown["run"]["status"] == "failed", shown
        assert shown["run"]["exitCode"] == 7, shown
        await expect(result).to_have_attribute("data-status", "failed")
        await expect(result).to_contain_text("exit code 7")
        await expect(page.locator("#oneoff-failure-code")).to_have_text(shown["run"]["failureCode"])
        await page.screenshot(path=shots / "ended.png", full_page=True)

        # A command the API refuses (longer than its 4,000 characters) shows the API's error and
        # starts nothing.
        await form.get_by_label("Command").fill("echo " + "x" * 4000)
        await form.get_by_role("button", name="Run").click()
        await expect(form.locator(".error, [role=alert]").first).to_be_visible()
        runs = await _api(
            coordinator,
            admin_token,
            "GET",
            f"/scheduled-task-runs?resourceId={stack.resource_id}",
        )
        assert [r["runId"] for r in runs["items"]] == [run_id], runs
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
