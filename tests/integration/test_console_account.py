"""The console's account page in a real headless Chromium against a real coordinator: changing the
password (a wrong current one and a weak new one are refused with the API's message and the
page stays signed in; a good one signs the other sessions out), enrolling two-factor login (the
secret shown once, confirmed with a code the test computes, recovery codes shown once, sign-in
asks for a code) and turning it off. Screenshots go to artifacts/console/<test>/."""

import pyotp
import pytest
from playwright.async_api import Browser, expect

from coordinator.db import models
from tests.browser import artifacts_dir
from tests.harness import Coordinator, eventually
from tests.integration.test_console_browser import PASSWORD
from tests.integration.test_console_pages import (
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)

__all__ = ["chromium_browser"]

EMAIL = "admin@example.com"  # the harness's first admin
NEW_PASSWORD = "lantern-meadow-copper-58"


async def _login(coordinator: Coordinator, password: str, code: str | None = None) -> int:
    body = {"email": EMAIL, "password": password} | ({"totpCode": code} if code else {})
    status, _, _ = await coordinator.call("POST", "/auth/login", json=body)
    return status


@pytest.mark.timeout(240)
async def test_console_changes_password_and_enrols_and_disables_two_factor(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
    # Another session of the same account (the CLI's): a password change signs it out.
    status, other, _ = await coordinator.call(
        "POST", "/auth/login", json={"email": EMAIL, "password": PASSWORD}
    )
    assert status == 201, other
    await page.get_by_role("link", name="Account").click()
    await expect(page.locator("main h1")).to_have_text("Account")
    await expect(page.locator("#account-email")).to_have_text(EMAIL)
    await expect(page.locator("#two-factor-state")).to_have_text("off")

    # A wrong current password: the API's 401 is shown, and the console stays signed in.
    form = page.get_by_role("form", name="Change password")
    await form.get_by_label("Current password").fill("not-my-password-at-all")
    await form.get_by_label("New password").fill(NEW_PASSWORD)
    await form.get_by_role("button", name="Change password").click()
    await expect(form.get_by_role("alert")).to_contain_text("the current password is wrong")
    await expect(page).to_have_url(coordinator.url + "/console/account")
    # A weak new password: the API's refusal, naming the field.
    await form.get_by_label("Current password").fill(PASSWORD)
    await form.get_by_label("New password").fill("short")
    await form.get_by_role("button", name="Change password").click()
    await expect(form.get_by_role("alert")).to_contain_text("newPassword")
    await expect(form.get_by_role("alert")).to_contain_text("at least")
    assert await _login(coordinator, PASSWORD) == 201  # nothing changed so far
    # The real change: the other session is signed out, this one stays.
    await form.get_by_label("Current password").fill(PASSWORD)
    await form.get_by_label("New password").fill(NEW_PASSWORD)
    await form.get_by_role("button", name="Change password").click()
    await expect(page.locator("#password-status")).to_contain_text("other session")
    status, body, _ = await coordinator.call("GET", "/account/profile", token=other["token"])
    assert status == 401, body
    assert await _login(coordinator, PASSWORD) == 401
    assert await _login(coordinator, NEW_PASSWORD) == 201
    await expect(page.locator("#account-email")).to_have_text(EMAIL)
    assert await models.AuditEvent.exists(event_type="account.password-changed")

    # Two-factor: the secret is shown once; a wrong code is refused, the right one turns it on.
    await page.get_by_role("button", name="Set up two-factor login").click()
    secret = (await page.locator("#totp-secret").text_content() or "").strip()
    assert len(secret) >= 16
    await expect(page.locator("#totp-uri")).to_contain_text(f"secret={secret}")
    await page.screenshot(path=shots / "enrol.png", full_page=True)
    authenticator = pyotp.TOTP(secret)
    confirm = page.get_by_role("form", name="Confirm two-factor login")
    wrong = f"{(int(authenticator.now()) + 500_000) % 1_000_000:06d}"
    await confirm.get_by_label("Code from the app").fill(wrong)
    await confirm.get_by_role("button", name="Turn on").click()
    await expect(page.locator("#two-factor-status").get_by_role("alert")).to_contain_text(
        "does not match"
    )
    used = authenticator.now()
    await confirm.get_by_label("Code from the app").fill(used)
    await confirm.get_by_role("button", name="Turn on").click()
    await expect(page.locator("#two-factor-state")).to_have_text("on")
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    shown = await page.locator("#recovery-codes code").all_inner_texts()
    recovery = [text.strip() for text in shown]
    await page.screenshot(path=shots / "two-factor-on.png", full_page=True)
    assert await _login(coordinator, NEW_PASSWORD) == 401  # the code is needed now

    async def next_step() -> bool:
        return authenticator.now() != used

    await eventually(next_step, timeout=40, what="the next TOTP step")
    assert await _login(coordinator, NEW_PASSWORD, authenticator.now()) == 201

    # Turning it off: a wrong code is refused (still signed in), a recovery code works.
    await page.reload()
    await expect(page.locator("#two-factor-state")).to_have_text("on")
    assert await page.locator("#recovery-codes").count() == 0  # shown once, not again
    off = page.get_by_role("form", name="Turn off two-factor login")
    await off.get_by_label("Code or recovery code").fill("000000-not-a-code")
    await off.get_by_role("button", name="Turn off").click()
    await expect(page.locator("#two-factor-status").get_by_role("alert")).to_contain_text("wrong")
    await expect(page).to_have_url(coordinator.url + "/console/account")
    await off.get_by_label("Code or recovery code").fill(recovery[0])
    await off.get_by_role("button", name="Turn off").click()
    await expect(page.locator("#two-factor-state")).to_have_text("off")
    await expect(page.locator("#two-factor-status")).to_contain_text("password alone")
    assert await _login(coordinator, NEW_PASSWORD) == 201
    assert await models.AuditEvent.exists(event_type="account.two-factor-enabled")
    await _fits_phone(page, shots / "phone-account.png")
    assert _unexpected(problems) == []
