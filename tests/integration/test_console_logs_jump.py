"""Jumping to a time in the console's runtime logs, in a real headless Chromium against a real
coordinator, agent and Docker: the view starts again at the first line after the chosen time
(the same line the API's history puts there), then keeps following. Screenshots go to
artifacts/console/<test>/."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator, eventually
from tests.integration.stacks import deployed_workload
from tests.integration.test_console_pages import _signed_in, _unexpected, chromium_browser

__all__ = ["chromium_browser"]

COUNTER = 'i=0; while true; do i=$((i+1)); echo "n=$i"; sleep 0.1; done'
# The browser's own local time for an absolute one: what a person types into the input.
LOCAL = """(iso) => {
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
}"""
SHOWN = "() => document.getElementById('log-view').logView.lines.map((l) => l.text)"


@pytest.mark.docker
@pytest.mark.timeout(240)
async def test_console_logs_jump_to_a_time_then_follow(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await deployed_workload(coordinator, admin_token, tmp_path / "agent", COUNTER)
    try:
        history: list[dict[str, str]] = []

        async def counted_to_40() -> bool:
            answer = await stack.call(
                "GET", f"/resources/{stack.resource_id}/runtime-logs?tailLines=1000"
            )
            history[:] = answer["logs"]
            return any(line["message"] == "n=40" for line in history)

        await eventually(counted_to_40, timeout=60, what="forty lines of the counter")
        # A whole second after line 15 (the input has one-second steps); the lines after it,
        # as the API's history has them.
        fifteen = next(line for line in history if line["message"] == "n=15")
        second = datetime.fromisoformat(fifteen["timestamp"][:19]) + timedelta(seconds=1)
        at = second.isoformat()
        after = [int(line["message"][2:]) for line in history if line["timestamp"] > at]
        first = after[0]
        assert first > 15, (at, first)

        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/resources/{stack.resource_id}")
        jump = page.get_by_role("form", name="Jump to a time")
        await jump.get_by_role("button", name="Jump to time").click()
        await expect(page.locator("#log-state")).to_contain_text("Pick a date and time")

        # Following from now first: the jump replaces it.
        await page.get_by_role("button", name="Follow logs").click()
        view = page.locator("#log-view")

        async def received(count: int) -> bool:
            return int(await view.get_attribute("data-received") or "0") >= count

        await eventually(lambda: received(10), what="the first followed lines")
        await jump.get_by_label("From", exact=True).fill(await page.evaluate(LOCAL, at + "Z"))
        await jump.get_by_role("button", name="Jump to time").click()
        await expect(page.locator("#log-state")).to_contain_text("following from")

        async def from_the_time_on() -> bool:
            texts: list[str] = await page.evaluate(SHOWN)
            numbers = [int(text.removeprefix("n=")) for text in texts]
            # Past what the history held: the jump keeps following.
            return bool(numbers) and numbers[0] == first and numbers[-1] > after[-1] + 5

        await eventually(from_the_time_on, timeout=60, what="the lines from the chosen time on")
        texts: list[str] = await page.evaluate(SHOWN)
        numbers = [int(text.removeprefix("n=")) for text in texts]
        # Every line once, in order, from the first after the chosen time.
        assert numbers == list(range(first, first + len(numbers))), numbers
        await expect(page.get_by_role("button", name="Stop following")).to_be_visible()
        await page.screenshot(path=shots / "logs-jumped.png", full_page=True)
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
