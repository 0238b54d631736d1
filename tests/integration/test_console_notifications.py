"""The console's Notifications page in a real headless Chromium against a real coordinator and a
real aiohttp webhook receiver on loopback: a signed webhook and a Slack preset are added (the
API's 400 shown for a form without events), a test notification arrives signed (the receiver
checks the HMAC; its first answer is a 503, so the delivery log shows two attempts ending in
204), disable and delete work, a subscription deleted behind the page's back shows the API's
404 and a read-only token the API's 403. An e-mail subscription added in the form (password
shown as ****) sends its test to a real aiosmtpd relay on loopback. Screenshots go to
artifacts/console/<test>/."""

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session
from playwright.async_api import Browser, expect

from tests.browser import artifacts_dir
from tests.harness import Coordinator, eventually, serving
from tests.integration.test_console_browser import _new_page, _sign_in
from tests.integration.test_console_pages import (
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)
from tests.unit.coordinator.support import mint_token

__all__ = ["chromium_browser"]
SECRET = "console-signing-secret-0123456789"


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """Allowed to call this test's loopback receiver; the first retry after 0.2 s."""
    async with serving(
        tmp_path / "coordinator",
        database_url,
        allow_private_webhook_targets=True,
        notification_retry_first_pause_seconds=0.2,
    ) as harness:
        yield harness


class Receiver:
    """A loopback webhook receiver: refuses the first request with 503, then keeps every
    request whose ``X-Berth-Signature`` is the HMAC of timestamp + body under ``SECRET``."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[int] = []
        self.answers = [503]

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Berth-Timestamp", "")
        expected = hmac.new(
            SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(f"v1={expected}", request.headers.get("X-Berth-Signature", "")):
            self.refused.append(401)
            return web.Response(status=401, text="bad signature")
        if self.answers:
            self.refused.append(self.answers[0])
            return web.Response(status=self.answers.pop())
        self.accepted.append(json.loads(body))
        return web.Response(status=204)


@pytest.mark.timeout(180)
async def test_console_adds_a_webhook_sends_a_signed_test_and_shows_its_delivery_log(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/berth", receiver.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/berth"
    try:
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.get_by_role("link", name="Notifications").click()
        await expect(page.locator("main h1")).to_have_text("Notifications")
        await expect(page.locator("#subscription-rows")).to_have_text("No subscriptions yet.")

        # No event chosen: the API's 400 shows in the form, nothing is stored.
        form = page.get_by_role("form", name="New subscription")
        await form.get_by_label("Name", exact=True).fill("ops hook")
        await form.get_by_label("URL", exact=True).fill(hook_url)
        await form.get_by_label("Signing secret (16+ characters)").fill(SECRET)
        await form.get_by_role("button", name="Add subscription").click()
        await expect(form.get_by_role("alert")).to_contain_text("events")
        status, listed, _ = await coordinator.call(
            "GET", "/notification-subscriptions", token=admin_token
        )
        assert status == 200, listed
        assert listed["items"] == [], listed

        # The signed webhook; the secret is shown only as ****.
        await form.get_by_label("deployment.failed").check()
        await form.get_by_role("button", name="Add subscription").click()
        await expect(form.get_by_role("status")).to_contain_text("Subscribed ops hook.")
        hook_row = page.locator("#subscription-rows tr", has_text="ops hook")
        await expect(hook_row).to_contain_text(hook_url)
        await expect(hook_row).to_contain_text("****")
        assert SECRET not in await page.content()

        # The Slack preset: the URL is the credential, shown masked; no signing secret asked.
        await form.get_by_label("Channel").select_option("slack")
        await expect(form.get_by_label("Signing secret (16+ characters)")).to_be_hidden()
        await form.get_by_label("Name", exact=True).fill("chat")
        await form.get_by_label("URL", exact=True).fill(
            "https://hooks.slack.com/services/T0/B0/very-secret"
        )
        await form.get_by_label("deployment.succeeded").check()
        await form.get_by_role("button", name="Add subscription").click()
        chat_row = page.locator("#subscription-rows tr", has_text="chat")
        await expect(chat_row).to_contain_text("https://hooks.slack.com/****")
        assert "very-secret" not in await page.content()

        # A test send: the receiver refuses once, then accepts it signed; the log shows both.
        await page.get_by_role("button", name="Send test to ops hook").click()
        await expect(page.locator("#notifications-status")).to_contain_text("Test notification")

        async def arrived() -> bool:
            return len(receiver.accepted) == 1

        await eventually(arrived, timeout=30, what="the signed test notification")
        assert receiver.refused == [503]
        assert receiver.accepted[0]["eventType"] == "notification.test", receiver.accepted[0]
        delivery = page.locator("#delivery-rows tr[data-delivery]")

        async def logged() -> bool:
            await page.get_by_role("button", name="Refresh").click()
            return await delivery.get_attribute("data-status") == "succeeded"

        await eventually(logged, timeout=30, what="the delivery logged as succeeded")
        await expect(delivery.locator(".delivery-attempts")).to_have_text("2")
        await expect(delivery.locator(".delivery-code")).to_have_text("204")
        await page.screenshot(path=shots / "deliveries.png", full_page=True)

        # Disable, then the API agrees.
        await page.get_by_role("button", name="Disable ops hook").click()
        await expect(hook_row.locator(".subscription-enabled")).to_have_text("no")
        await expect(page.get_by_role("button", name="Enable ops hook")).to_be_visible()

        # Deleted behind the page's back: its controls show the API's 404.
        chat_id = await chat_row.get_attribute("data-subscription")
        status, _, _ = await coordinator.call(
            "DELETE", f"/notification-subscriptions/{chat_id}", token=admin_token
        )
        assert status == 200
        await page.get_by_role("button", name="Send test to chat").click()
        await expect(page.locator("#notifications-status").get_by_role("alert")).to_be_visible()
        await expect(page.locator("#notifications-status")).to_contain_text("not found")

        # Delete (after the confirmation the page's dialog handler accepts).
        await page.get_by_role("button", name="Delete ops hook").click()
        await expect(page.locator("#subscription-rows")).to_have_text("No subscriptions yet.")
        await _fits_phone(page, shots / "phone-notifications.png")
        assert _unexpected(problems) == []

        # A token that may only read notifications: the list draws, adding shows the 403.
        reader = await mint_token(
            coordinator, admin_token, ["notifications:read", "servers:read"], name="reader"
        )
        limited = await _new_page(chromium_browser, problems)
        await _sign_in(limited, coordinator, reader["token"])
        await limited.goto(f"{coordinator.url}/console/notifications")
        await expect(limited.locator("#subscription-rows")).to_have_text("No subscriptions yet.")
        limited_form = limited.get_by_role("form", name="New subscription")
        await limited_form.get_by_label("Name", exact=True).fill("nope")
        await limited_form.get_by_label("URL", exact=True).fill(hook_url)
        await limited_form.get_by_label("Signing secret (16+ characters)").fill(SECRET)
        await limited_form.get_by_label("deployment.failed").check()
        await limited_form.get_by_role("button", name="Add subscription").click()
        await expect(limited_form.get_by_role("alert")).to_contain_text("notifications:write")
        assert _unexpected(problems) == []
    finally:
        await runner.cleanup()


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


@pytest.mark.timeout(120)
async def test_console_adds_an_email_subscription_and_its_test_arrives(
    coordinator: Coordinator,
    admin_token: str,
    chromium_browser: Browser,
) -> None:
    mailbox = Mailbox()
    smtp_server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(mailbox, hostname="mail.test"), "127.0.0.1", 0
    )
    smtp_port = int(smtp_server.sockets[0].getsockname()[1])
    try:
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/notifications")
        form = page.get_by_role("form", name="New subscription")
        await form.get_by_label("Channel").select_option("email")
        await expect(form.get_by_label("URL", exact=True)).to_be_hidden()
        await form.get_by_label("Name", exact=True).fill("ops mail")
        await form.get_by_label("deployment.failed").check()
        await form.get_by_label("To (comma-separated)").fill(
            "ops@example.test, oncall@example.test"
        )
        await form.get_by_label("From").fill("berth@example.test")
        await form.get_by_label("SMTP host").fill("127.0.0.1")
        await form.get_by_label("SMTP port").fill(str(smtp_port))
        await form.get_by_label("SMTP security").select_option("none")
        await form.get_by_label("SMTP password").fill("relay-password-1")
        await form.get_by_role("button", name="Add subscription").click()
        row = page.locator("#subscription-rows tr", has_text="ops mail")
        await expect(row).to_contain_text(
            f"ops@example.test, oncall@example.test via 127.0.0.1:{smtp_port}"
        )
        await expect(row).to_contain_text("****")
        assert "relay-password-1" not in await page.content()

        # The test goes out by mail to both recipients (no username: the relay is not logged in
        # to) and the delivery log shows it succeeded.
        await page.get_by_role("button", name="Send test to ops mail").click()

        async def arrived() -> bool:
            return len(mailbox.messages) == 1

        await eventually(arrived, timeout=30, what="the test e-mail")
        assert sorted(mailbox.messages[0].rcpt_tos) == ["oncall@example.test", "ops@example.test"]
        delivery = page.locator("#delivery-rows tr[data-delivery]")

        async def logged() -> bool:
            await page.get_by_role("button", name="Refresh").click()
            return await delivery.get_attribute("data-status") == "succeeded"

        await eventually(logged, timeout=30, what="the e-mail delivery logged as succeeded")
        assert _unexpected(problems) == []
    finally:
        smtp_server.close()
        await smtp_server.wait_closed()
