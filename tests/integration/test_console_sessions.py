"""Console sign-in with e-mail, password and TOTP through cookie sessions, in a real headless
Chromium against a real coordinator: the CSRF header on mutations, own sessions listed and
revoked, sign-out refused afterwards by the API, an expired session sent back to sign-in."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from playwright.async_api import Browser, BrowserContext, Dialog, Page, expect

from tests.browser import artifacts_dir, chromium, require_console_parts
from tests.harness import Coordinator, eventually

EMAIL = "admin@example.com"  # the harness's first admin
PASSWORD = "plover-quartz-harbour-91"
UI_TIMEOUT_MS = 30_000
# A page's own fetch of a mutation, with whatever headers the test passes (no CSRF header).
FETCH = """async ([method, path, body, headers]) => {
  const response = await fetch(path, {
    method, credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', ...headers},
    body: body === null ? undefined : JSON.stringify(body),
  });
  return [response.status, await response.text()];
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium; fails (never skips) without it under BERTH_REQUIRE_DOCKER=1."""
    require_console_parts()
    expect.set_options(timeout=UI_TIMEOUT_MS)
    async with chromium() as launched:
        yield launched


async def _context(browser: Browser, problems: list[str]) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    async def accept(dialog: Dialog) -> None:  # the revoke buttons ask to confirm
        await dialog.accept()

    page.on("dialog", accept)
    return context, page


async def _set_password(coordinator: Coordinator, token: str) -> None:
    status, body, _ = await coordinator.call(
        "POST", "/account/password", token=token, json={"newPassword": PASSWORD}
    )
    assert status == 200, body


async def _enable_totp(coordinator: Coordinator, token: str) -> tuple[pyotp.TOTP, list[str]]:
    """Two-factor login on; returns the authenticator and the recovery codes."""
    status, enrolment, _ = await coordinator.call("POST", "/account/two-factor/enable", token=token)
    assert status == 200, enrolment
    authenticator = pyotp.TOTP(enrolment["secret"])
    used = authenticator.now()
    status, enabled, _ = await coordinator.call(
        "POST", "/account/two-factor/confirm", token=token, json={"code": used}
    )
    assert status == 200, enabled

    # The confirming code was used once; a login needs a code of a later time step.
    async def next_step() -> bool:
        return authenticator.now() != used

    await eventually(next_step, timeout=40, what="the next TOTP step")
    return authenticator, list(enabled["recoveryCodes"])


async def _cookie_status(coordinator: Coordinator, path: str, secret: str) -> int:
    """GET with only the session cookie, from outside the browser."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(coordinator.url + path, headers={"Cookie": f"berth_session={secret}"}) as answer,
    ):
        return answer.status


async def _cookies(context: BrowserContext) -> dict[str, Any]:
    return {cookie["name"]: cookie for cookie in await context.cookies()}


@pytest.mark.docker
@pytest.mark.timeout(180)
async def test_password_and_totp_sign_in_csrf_sessions_and_sign_out(
    coordinator: Coordinator, admin_token: str, browser: Browser, request: pytest.FixtureRequest
) -> None:
    shots = artifacts_dir(request.node.name)
    await _set_password(coordinator, admin_token)
    authenticator, recovery_codes = await _enable_totp(coordinator, admin_token)
    problems: list[str] = []
    context, page = await _context(browser, problems)

    # Sign in: e-mail and password, then the page asks for the code.
    await page.goto(coordinator.url + "/console/")
    await expect(page).to_have_url(f"{coordinator.url}/console/sign-in?next=%2F")
    await page.get_by_label("E-mail").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    code = page.get_by_label("Two-factor code")
    await expect(code).to_be_visible()
    await page.screenshot(path=shots / "sign-in-code.png")
    await code.fill(authenticator.now())
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(coordinator.url + "/console/servers")

    # The session is the HttpOnly cookie; the page keeps no token of its own.
    cookies = await _cookies(context)
    assert cookies["berth_session"]["httpOnly"] is True
    assert cookies["berth_csrf"]["httpOnly"] is False
    secret = cookies["berth_session"]["value"]
    assert await page.evaluate("sessionStorage.length") == 0
    assert await page.evaluate("localStorage.length") == 0
    assert secret not in await page.evaluate("document.cookie")

    # A mutation through the console's forms works (it sends X-CSRF-Token)...
    await page.get_by_role("link", name="Projects").click()
    await page.locator("#project-name").fill("shop")
    await page.get_by_role("form", name="New project").get_by_role("button", name="Create").click()
    await expect(page.get_by_role("heading", name="shop", exact=True)).to_be_visible()

    # ...the same mutation from the page without the header is refused, and writes nothing.
    status, text = await page.evaluate(FETCH, ["POST", "/projects", {"name": "csrfless"}, {}])
    assert status == 403, text
    assert '"forbidden"' in text
    assert "X-CSRF-Token" in text
    wrong = {"X-CSRF-Token": "not-the-token"}
    status, text = await page.evaluate(FETCH, ["POST", "/projects", {"name": "csrfless"}, wrong])
    assert status == 403, text
    listed = await coordinator.call("GET", "/projects", token=admin_token)
    names = [project["name"] for project in listed[1]["items"]]
    assert "shop" in names
    assert "csrfless" not in names

    # Own sessions: this one is marked; another (the CLI's, by recovery code) is revoked here.
    status, other, _ = await coordinator.call(
        "POST",
        "/auth/login",
        json={"email": EMAIL, "password": PASSWORD, "recoveryCode": recovery_codes[0]},
    )
    assert status == 201, other
    await page.get_by_role("link", name="Sessions").click()
    await expect(page.locator('tr[data-current="true"]')).to_have_count(1)
    other_row = page.locator(f'tr[data-session-id="{other["sessionId"]}"]')
    await expect(other_row).to_have_attribute("data-current", "false")
    await page.screenshot(path=shots / "sessions.png", full_page=True)
    await other_row.get_by_role("button", name=f"Revoke session {other['sessionId']}").click()
    await expect(other_row).to_have_count(0)
    await expect(page.locator("#sessions-status")).to_contain_text("revoked")
    status, body, _ = await coordinator.call("GET", "/servers/count", token=other["token"])
    assert status == 401, body
    assert await _cookie_status(coordinator, "/servers/count", secret) == 200

    assert problems == [], problems

    # Sign out ends the session on the coordinator: the API refuses its cookie from then on.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(coordinator.url + "/console/sign-in")
    assert "berth_session" not in await _cookies(context)
    assert await _cookie_status(coordinator, "/servers/count", secret) == 401
    status, text = await page.evaluate(FETCH, ["GET", "/servers/count", None, {}])
    assert status == 401, text
    await page.goto(coordinator.url + "/console/projects")
    await expect(page).to_have_url(f"{coordinator.url}/console/sign-in?next=%2Fprojects")
    await context.close()


@pytest.mark.docker
@pytest.mark.timeout(120)
async def test_an_expired_session_goes_back_to_sign_in(
    tmp_path: Path, database_url: str, browser: Browser, request: pytest.FixtureRequest
) -> None:
    shots = artifacts_dir(request.node.name)
    # Sessions end 20 s after login: long enough to sign in on a busy machine, short for a test.
    coordinator = Coordinator(tmp_path / "coordinator", database_url, session_absolute_seconds=20.0)
    await coordinator.start()
    try:
        token = await coordinator.bootstrap()
        await _set_password(coordinator, token)
        problems: list[str] = []
        context, page = await _context(browser, problems)
        await page.goto(coordinator.url + "/console/sign-in")
        await page.get_by_label("E-mail").fill(EMAIL)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page).to_have_url(coordinator.url + "/console/servers")
        secret = (await _cookies(context))["berth_session"]["value"]
        assert await _cookie_status(coordinator, "/servers/count", secret) == 200

        # The servers page refreshes every 5 s; once the session has expired, a refresh answers
        # 401 and the console goes back to sign-in by itself, saying why.
        await expect(page).to_have_url(
            f"{coordinator.url}/console/sign-in?expired=1", timeout=60_000
        )
        await expect(
            page.get_by_role("status").filter(has_text="Your session ended")
        ).to_be_visible()
        await page.screenshot(path=shots / "session-ended.png")
        assert await _cookie_status(coordinator, "/servers/count", secret) == 401
        assert "berth_csrf" not in await _cookies(context)

        # Signing in again works although the browser still holds the dead HttpOnly cookie.
        await page.get_by_label("E-mail").fill(EMAIL)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page).to_have_url(coordinator.url + "/console/servers")
        renewed = (await _cookies(context))["berth_session"]["value"]
        assert renewed != secret
        assert problems == [], problems
        await context.close()
    finally:
        await coordinator.close()
