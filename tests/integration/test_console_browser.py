"""The web console end to end in a real headless Chromium against a real coordinator, agent and
Docker: sign in, create project/environment/resource, preview, deploy live, follow logs, run a
command in the terminal, read a drawn chart, audit log, API tokens, sign out; screenshots of every
page go to artifacts/console/<test>/."""

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, expect

from tests.browser import artifacts_dir, chromium, require_console_parts
from tests.harness import Coordinator, eventually
from tests.integration.stacks import deployed_workload, start_agent

TICKS = 'i=0; while true; do i=$((i+1)); echo "tick-$i"; echo "warn-$i" >&2; sleep 0.2; done'
# How long a console page may take to show what the test waits for (CI is a shared 2-core box).
UI_TIMEOUT_MS = 30_000
SECRET = "s3cr3t-Value-42"
PASSWORD = "plover-quartz-harbour-91"
# Chromium's console messages that are expected: xterm.js tries to inject <style> elements,
# which the CSP blocks by design (src/xterm-theme.css carries those rules instead).
EXPECTED_CONSOLE = ("Applying inline style violates",)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium; fails (never skips) without it under BERTH_REQUIRE_DOCKER=1."""
    require_console_parts()
    expect.set_options(timeout=UI_TIMEOUT_MS)
    async with chromium() as launched:
        yield launched


async def _new_page(
    browser: Browser, problems: list[str], width: int = 1280, height: int = 720
) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def console(message: Any) -> None:
        if message.type != "error" or message.text.startswith(EXPECTED_CONSOLE):
            return
        # A server without a threshold policy: the API's 404 is how the page learns it.
        if "/runtime-monitoring/thresholds?" in message.location.get("url", "") and "404" in (
            message.text
        ):
            return
        problems.append(f"console error on {page.url}: {message.text}")

    page.on("console", console)
    # Printed, so pytest shows them with a failure: where the page went and which calls failed
    # (a flake in CI left only "element was detached" to go on).
    page.on("framenavigated", lambda frame: print("navigated:", frame.url))
    page.on(
        "response",
        lambda response: (
            print("answered", response.status, response.url) if response.status >= 400 else None
        ),
    )
    return page


async def _sign_in(page: Page, coordinator: Coordinator, token: str) -> None:
    await page.goto(coordinator.url + "/console/")
    await expect(page).to_have_url(f"{coordinator.url}/console/sign-in?next=%2F")
    # Token sign-in is the secondary option, behind a button (password sign-in is the form shown).
    await page.get_by_role("button", name="Use an API token instead").click()
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in with token").click()
    await expect(page).to_have_url(coordinator.url + "/console/servers")


async def _sign_in_with_password(page: Page, coordinator: Coordinator, admin_token: str) -> None:
    """Give the first admin a password, then sign in with it: the console's cookie session."""
    status, body, _ = await coordinator.call(
        "POST", "/account/password", token=admin_token, json={"newPassword": PASSWORD}
    )
    assert status == 200, body
    await page.goto(coordinator.url + "/console/")
    await expect(page).to_have_url(f"{coordinator.url}/console/sign-in?next=%2F")
    await page.get_by_label("E-mail").fill("admin@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(coordinator.url + "/console/servers")


async def _screen_lines(page: Page) -> list[str]:
    """The terminal's screen as xterm.js holds it, one trimmed string per line."""
    lines: list[str] = await page.evaluate(
        """() => {
          const buffer = document.getElementById('terminal').terminal.buffer.active;
          const lines = [];
          for (let i = 0; i < buffer.length; i++) {
            lines.push(buffer.getLine(i).translateToString(true));
          }
          return lines;
        }"""
    )
    return [line.strip() for line in lines]


async def _chart_pixels(page: Page) -> int:
    """Pixels of the CPU series' colour drawn on the chart's canvas."""
    count: int = await page.evaluate(
        """() => {
          const canvas = document.querySelector('#usage-chart canvas');
          const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
          let n = 0;
          const near = (value, target) => Math.abs(value - target) < 30;
          for (let i = 0; i < data.length; i += 4) {
            if (near(data[i], 0x25) && near(data[i + 1], 0x63) && near(data[i + 2], 0xeb)) n++;
          }
          return n;
        }"""
    )
    return count


@pytest.mark.docker
# Four deployments, a terminal and a browser on a shared CI machine: more than the default 120 s.
@pytest.mark.timeout(300)
async def test_console_end_to_end(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    browser: Browser,
    docker_client: Any,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    agent, server_id = await start_agent(
        coordinator, admin_token, tmp_path / "agent", env={"BERTH_AGENT_SAMPLE_SECONDS": "1"}
    )
    problems: list[str] = []
    try:
        page = await _new_page(browser, problems)
        await _sign_in_with_password(page, coordinator, admin_token)

        # Servers: the agent's live state, version and usage bars.
        row = page.locator(f'tr[data-server-id="{server_id}"]')
        await expect(row.locator("[data-state]")).to_have_attribute("data-state", "online")
        await expect(row.locator("meter")).to_have_count(3)
        await page.screenshot(path=shots / "servers.png", full_page=True)

        # Project -> environment -> resource, all through the forms.
        await page.get_by_role("link", name="Projects").click()
        await page.locator("#project-name").fill("shop")
        await (
            page.get_by_role("form", name="New project")
            .get_by_role("button", name="Create")
            .click()
        )
        await expect(page.get_by_role("heading", name="shop", exact=True)).to_be_visible()
        await page.screenshot(path=shots / "project.png", full_page=True)
        await page.locator("#environment-name").fill("production")
        await (
            page.get_by_role("form", name="New environment")
            .get_by_role("button", name="Create")
            .click()
        )
        await expect(page.get_by_role("heading", name="production", exact=True)).to_be_visible()
        await page.get_by_label("Name").fill("ticker")
        await page.get_by_label("Image", exact=True).fill("berth-test/busybox")
        await page.get_by_label("Start command").fill(TICKS)
        await page.get_by_label("HTTP health check").uncheck()
        await page.screenshot(path=shots / "environment.png", full_page=True)
        await (
            page.get_by_role("form", name="New resource (container image)")
            .get_by_role("button", name="Create")
            .click()
        )
        await expect(page.get_by_role("heading", name="ticker", exact=True)).to_be_visible()
        resource_id = page.url.rsplit("/", 1)[1]

        # Plan preview first, then the deployment's timeline, live.
        await expect(page.locator("#deploy")).to_be_disabled()
        await page.get_by_role("button", name="Preview plan").click()
        await expect(page.locator("#plan-readiness")).to_have_attribute("data-ready", "true")
        await expect(page.locator("#plan-card")).to_contain_text(TICKS)
        await page.screenshot(path=shots / "plan.png", full_page=True)
        await page.evaluate(
            """() => {
              window.seenStatuses = [];
              const status = document.getElementById('deployment-status');
              // One record per change, even when several events arrive in one chunk.
              new MutationObserver((records) => {
                for (const record of records) window.seenStatuses.push(record.oldValue);
              }).observe(status, {
                attributes: true, attributeOldValue: true, attributeFilter: ['data-status'],
              });
            }"""
        )
        await page.get_by_role("button", name="Deploy", exact=True).click()
        await expect(page.locator("#deployment-status")).to_have_attribute(
            "data-status", "succeeded", timeout=90_000
        )
        await expect(page.locator('#timeline li[data-status="succeeded"]')).to_have_count(1)
        seen: list[str] = await page.evaluate(
            "[...window.seenStatuses, document.getElementById('deployment-status').dataset.status]"
        )
        # The status moved through the deployment's phases as they streamed in, in order.
        seen = [status for status in seen if status]  # the first old value is "no status yet"
        assert seen[-1] == "succeeded", seen
        assert len(set(seen)) >= 3, seen
        assert "running" in seen or "deploying" in seen or "planned" in seen, seen
        await expect(page.locator("#deployments tbody tr")).to_have_count(1)
        await page.screenshot(path=shots / "deployed.png", full_page=True)

        # Redeploy, then roll back to the first deployment; each is followed to its end.
        rows = page.locator("#deployments tbody tr")
        await page.get_by_role("button", name="Redeploy").click()
        await expect(rows).to_have_count(2, timeout=90_000)
        await expect(rows.first.locator(".state")).to_have_text("succeeded")
        await rows.nth(1).get_by_role("button", name="Roll back to this").click()
        await expect(rows).to_have_count(3, timeout=90_000)
        await expect(rows.first.locator(".state")).to_have_text("succeeded")
        deployments = await coordinator.call(
            "GET", f"/deployments?resourceId={resource_id}", token=admin_token
        )
        kinds = sorted(d["triggerKind"] for d in deployments[1]["items"])
        assert kinds == ["create", "redeploy", "rollback"], kinds

        # A secret and a variable: the secret's value is never shown, only replaced.
        config = page.get_by_role("form", name="Set a variable or secret")
        await config.get_by_label("Key").fill("API_KEY")
        await config.get_by_label("Value").fill(SECRET)
        await config.get_by_role("button", name="Set").click()
        await expect(page.locator('#config-rows tr[data-key="API_KEY"]')).to_contain_text("****")
        await config.get_by_label("Key").fill("API_KEY")
        await config.get_by_label("Value").fill(SECRET + "-rotated")
        await config.get_by_role("button", name="Set").click()
        await expect(page.get_by_text("API_KEY replaced;")).to_be_visible()
        await config.get_by_label("Key").fill("MODE")
        await config.get_by_label("Value").fill("fast")
        await config.get_by_label("Secret").uncheck()
        await config.get_by_role("button", name="Set").click()
        await expect(page.locator('#config-rows tr[data-key="MODE"]')).to_contain_text("fast")
        assert SECRET not in await page.content()
        await page.screenshot(path=shots / "variables.png", full_page=True)
        # The next deployment gets them (the terminal below reads them back).
        await page.get_by_role("button", name="Redeploy").click()
        await expect(rows).to_have_count(4, timeout=90_000)
        await expect(rows.first.locator(".state")).to_have_text("succeeded")

        # Runtime logs: following shows new lines as they arrive; stderr is marked; filters work.
        await page.get_by_role("button", name="Follow logs").click()
        view = page.locator("#log-view")
        await expect(view.locator(".log-stdout").first).to_contain_text("tick-")
        first = int(await view.get_attribute("data-received") or "0")

        async def more_lines() -> bool:
            return int(await view.get_attribute("data-received") or "0") >= first + 5

        await eventually(more_lines, timeout=30, what="new log lines in the browser")
        await expect(view.locator(".log-stderr").first).to_contain_text("warn-")
        await page.get_by_label("Stream").select_option("stderr")
        await expect(view.locator(".log-stdout")).to_have_count(0)
        await page.get_by_label("Stream").select_option("")
        await page.get_by_label("Filter").fill("tick-1")
        await expect(view.locator(".log-stderr")).to_have_count(0)
        await page.get_by_label("Filter").fill("")
        await page.screenshot(path=shots / "logs.png", full_page=True)
        await page.get_by_role("button", name="Stop following").click()

        # Terminal: xterm.js over the terminal-session websocket.
        await page.get_by_role("link", name="Open terminal").click()
        await expect(page.locator("#terminal")).to_have_attribute("data-state", "connected")
        await page.locator("#terminal").click()
        await page.keyboard.type("echo $((6*7))\n")

        async def shows_42() -> bool:
            return "42" in await _screen_lines(page)

        await eventually(shows_42, what="42 on the terminal's screen")
        await page.keyboard.type('echo "mode=$MODE key=${#API_KEY}"\n')

        async def shows_config() -> bool:
            expected = f"mode=fast key={len(SECRET + '-rotated')}"
            return expected in await _screen_lines(page)

        await eventually(shows_config, what="the variable and the rotated secret in the container")
        wide: int = await page.evaluate("document.getElementById('terminal').terminal.cols")
        await page.screenshot(path=shots / "terminal.png")
        await page.set_viewport_size({"width": 390, "height": 844})

        async def narrower() -> bool:
            cols: int = await page.evaluate("document.getElementById('terminal').terminal.cols")
            return cols < wide

        await eventually(narrower, what="the terminal to follow the window's width")
        cols = await page.evaluate("document.getElementById('terminal').terminal.cols")

        async def sized() -> bool:
            # The resize frame travels on its own: ask again until the pty has the new size.
            if any(re.fullmatch(rf"\d+ {cols}", line) for line in await _screen_lines(page)):
                return True
            await page.keyboard.type("stty size\n")
            return False

        await eventually(sized, what=f"stty to report {cols} columns")
        await page.screenshot(path=shots / "terminal-phone.png")
        await page.set_viewport_size({"width": 1280, "height": 720})

        # Server page: a chart that has drawn points from the rollups.
        await page.goto(f"{coordinator.url}/console/servers/{server_id}")
        chart = page.locator("#usage-chart")
        await expect(chart.locator("canvas")).to_have_count(1)

        async def drawn() -> bool:
            await page.get_by_label("Window").select_option("minute")
            return (
                int(await chart.get_attribute("data-points") or "0") >= 1
                and await _chart_pixels(page) > 0
            )

        await eventually(drawn, timeout=30, what="the usage chart to draw points")
        await expect(page.locator("#network-chart canvas")).to_have_count(1)
        # Thresholds: none yet, then a CPU rule set from the form, shown with its state.
        await expect(page.locator("#thresholds")).to_contain_text("No threshold policy")
        await page.get_by_label("CPU busy % warning").fill("70")
        await page.get_by_label("CPU busy % critical").fill("90")
        await page.get_by_role("button", name="Save thresholds").click()
        await expect(page.locator("#thresholds")).to_contain_text(
            "cpu.busyPercent: warning 70, critical 90"
        )
        await expect(page.locator("#threshold-state")).to_have_text(
            re.compile("^(ok|warning|critical)$")
        )
        # Capacity prune: a dry run first, which says what would go and offers the real one.
        await page.get_by_role("button", name="Prune leftovers (dry run first)").click()
        await expect(page.locator('#prune [data-dry-run="true"]')).to_contain_text("Dry run:")
        await page.screenshot(path=shots / "server.png", full_page=True)

        # Audit log: the deployment and the terminal session are there.
        await page.get_by_role("link", name="Audit log").click()
        await expect(page.locator("#audit-rows")).to_contain_text("terminal-session.opened")
        await page.get_by_label("Aggregate id").fill(resource_id)
        await page.get_by_role("button", name="Filter").click()
        await expect(page.locator("#audit-rows tr").first).to_contain_text(resource_id)
        await page.screenshot(path=shots / "audit.png", full_page=True)

        # API tokens: the new token is shown once, never again.
        await page.get_by_role("link", name="API tokens").click()
        await page.get_by_label("Name").fill("ci")
        await page.get_by_role("button", name="Create").click()
        secret = (await page.locator("#new-token").inner_text()).strip()
        assert len(secret) > 20
        await expect(page.locator("#token-rows")).to_contain_text("ci")
        await page.screenshot(path=shots / "tokens.png", full_page=True)
        await page.reload()
        await expect(page.locator("#token-rows")).to_contain_text(f"…{secret[-4:]}")
        assert secret not in await page.content()
        # The token the console holds is in this tab's sessionStorage only.
        assert await page.evaluate("localStorage.length") == 0
        assert admin_token not in page.url

        # Phone width: every page fits the screen (wide tables scroll inside their own box).
        await page.set_viewport_size({"width": 390, "height": 844})
        for name, address in (
            ("servers", "/servers"),
            ("server", f"/servers/{server_id}"),
            ("resource", f"/resources/{resource_id}"),
            ("audit", "/audit"),
            ("tokens", "/tokens"),
        ):
            await page.goto(f"{coordinator.url}/console{address}")
            await expect(page.locator("main h1")).to_be_visible()
            await page.wait_for_load_state("networkidle")
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (address, overflow)
            await page.screenshot(path=shots / f"phone-{name}.png", full_page=True)
        await page.set_viewport_size({"width": 1280, "height": 720})

        # Nothing went wrong in the browser so far (what follows provokes 401/403 on purpose).
        assert problems == [], problems

        # Sign out: back to sign-in, and pages send you there.
        await page.get_by_role("button", name="Sign out").click()
        await expect(page).to_have_url(coordinator.url + "/console/sign-in")
        assert await page.evaluate("sessionStorage.length") == 0
        await page.goto(coordinator.url + "/console/servers")
        await expect(page.get_by_label("E-mail")).to_be_visible()
        await page.screenshot(path=shots / "sign-in.png")

        # A session that stops being valid (the token revoked) sends the person to sign-in.
        await _sign_in(page, coordinator, secret)
        listed = await coordinator.call("GET", "/deploy-tokens", token=admin_token)
        token_id = next(t["tokenId"] for t in listed[1]["items"] if t["displayName"] == "ci")
        status, body, _ = await coordinator.call(
            "POST",
            f"/deploy-tokens/{token_id}/revoke",
            token=admin_token,
            json={"confirmation": {"tokenId": token_id}},
        )
        assert status == 200, body
        # The servers page's next call (its poll, or its stream reconnecting after the revoke
        # ended it) answers 401 and sends the person to sign-in by itself. (A reload here raced
        # that call: reloading /servers after it had forgotten the token showed sign-in without
        # saying why.)
        await expect(page).to_have_url(
            f"{coordinator.url}/console/sign-in?expired=1", timeout=60_000
        )
        await expect(
            page.get_by_role("status").filter(has_text="Your session ended")
        ).to_be_visible()
        await page.screenshot(path=shots / "session-ended.png")
    finally:
        await agent.stop()


async def _try_websocket(page: Page, url: str) -> str:
    """Open a websocket from the page: 'open' when the server upgraded it, else 'refused'."""
    outcome: str = await page.evaluate(
        """(url) => new Promise((resolve) => {
          const socket = new WebSocket(url, 'berth.terminal.v1');
          socket.onopen = () => { socket.close(); resolve('open'); };
          socket.onerror = () => resolve('refused');
        })""",
        url,
    )
    return outcome


async def test_a_page_from_another_origin_cannot_open_the_terminal_websocket(
    coordinator: Coordinator, browser: Browser
) -> None:
    """The browser itself sends Origin: a page of another site (here a plain page served on
    another port) gets 403 before the upgrade, whatever it would send; the coordinator's own
    page connects. (A console page on another host name is already stopped by its CSP.)"""
    problems: list[str] = []
    page = await _new_page(browser, problems)
    port = coordinator.port
    target = f"ws://127.0.0.1:{port}/terminal-sessions/term_0123456789abcdef/attach"
    await page.goto(f"http://127.0.0.1:{port}/console/sign-in")
    assert await _try_websocket(page, target) == "open"
    assert problems == []

    async def blank(_request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>elsewhere</title>", content_type="text/html"
        )

    other = web.Application()
    other.router.add_get("/", blank)
    runner = web.AppRunner(other)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        other_port = runner.addresses[0][1]
        await page.goto(f"http://127.0.0.1:{other_port}/")
        assert await _try_websocket(page, target) == "refused"
        assert any("403" in problem for problem in problems), problems

        problems.clear()
        await page.goto(f"http://localhost:{port}/console/sign-in")
        assert await _try_websocket(page, target) == "refused"
        assert any("Content Security Policy" in problem for problem in problems), problems
    finally:
        await runner.cleanup()


@pytest.mark.docker
@pytest.mark.timeout(240)
async def test_logs_follow_resumes_after_the_coordinator_restarts_without_loss_or_repeats(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    browser: Browser,
    docker_client: Any,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    stack = await deployed_workload(
        coordinator,
        admin_token,
        tmp_path / "agent",
        'i=0; while true; do i=$((i+1)); echo "n=$i"; sleep 0.1; done',
    )
    problems: list[str] = []
    try:
        page = await _new_page(browser, problems)
        await _sign_in_with_password(page, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/resources/{stack.resource_id}")
        await page.get_by_role("button", name="Follow logs").click()
        view = page.locator("#log-view")

        async def received_at_least(count: int) -> bool:
            return int(await view.get_attribute("data-received") or "0") >= count

        await eventually(lambda: received_at_least(20), what="the first lines")
        await coordinator.restart()
        before = int(await view.get_attribute("data-received") or "0")
        # The agent reconnects, the page's stream resumes from its last event id.
        await eventually(
            lambda: received_at_least(before + 30), timeout=60, what="lines after the restart"
        )
        await expect(page.locator("#log-state")).to_have_text("following")
        texts: list[str] = await page.evaluate(
            "() => document.getElementById('log-view').logView.lines.map((l) => l.text)"
        )
        numbers = [int(text.removeprefix("n=")) for text in texts]
        # Every line once, in order: nothing lost while the coordinator was away, nothing twice.
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
        await page.screenshot(path=shots / "logs-resumed.png", full_page=True)
        assert [p for p in problems if p.startswith("page error")] == []
    finally:
        await stack.agent.stop()
