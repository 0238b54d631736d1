"""An invitation is e-mailed through the organization's e-mail channel (a real aiosmtpd server
on loopback), and the e-mailed secret opens the account."""

import asyncio
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import orjson
import pytest
from aiosmtpd.smtp import SMTP

from tests.harness import Coordinator
from tests.integration.test_notifications import Mailbox

PASSWORD = "tram-lantern-opal-93"


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """Allowed to reach this test's loopback SMTP server."""
    harness = Coordinator(
        tmp_path / "coordinator", database_url, allow_private_webhook_targets=True
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


def _body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


async def test_an_invitation_is_emailed_and_its_secret_creates_the_account(
    coordinator: Coordinator, admin_token: str
) -> None:
    org = "/organizations/org_default"
    invite = {"email": "bob@example.test", "role": "viewer"}
    status, plain, _ = await coordinator.call(
        "POST", f"{org}/invitations", token=admin_token, json=invite
    )
    assert status == 201, plain
    assert plain["emailStatus"] == "not-configured"
    mailbox = Mailbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(mailbox, hostname="mail.test"), "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        status, sub, _ = await coordinator.call(
            "POST",
            "/notification-subscriptions",
            token=admin_token,
            json={
                "name": "ops mail",
                "channel": "email",
                "events": ["deployment.failed"],
                "email": {
                    "to": ["ops@example.test"],
                    "fromAddress": "berth@example.test",
                    "smtp": {"host": "127.0.0.1", "port": port, "security": "none"},
                },
            },
        )
        assert status == 201, sub
        status, sent, _ = await coordinator.call(
            "POST",
            f"{org}/invitations",
            token=admin_token,
            json={**invite, "email": "eve@example.test"},
        )
        assert status == 201, sent
        assert sent["emailStatus"] == "sent", sent
    finally:
        server.close()
        await server.wait_closed()
    assert len(mailbox.messages) == 1
    envelope = mailbox.messages[0]
    assert envelope.rcpt_tos == ["eve@example.test"]  # the invitee only, not the channel's list
    assert isinstance(envelope.content, bytes)
    message = message_from_bytes(envelope.content)
    assert sent["token"] not in str(message["Subject"])
    body = _body(message)
    details = orjson.loads(body[body.index("{") :])
    secret = details["invitationSecret"]
    assert secret == sent["token"]
    # The link opens the console's accept page on the coordinator's own address (never the
    # request's Host header: a mailed link carries the secret).
    assert details["acceptUrl"] == sent["acceptUrl"]
    assert sent["acceptUrl"] == f"{coordinator.url}/console/accept-invitation#{secret}"
    status, accepted, _ = await coordinator.call(
        "POST", "/organization-invitations/accept", json={"token": secret, "password": PASSWORD}
    )
    assert status == 201, accepted
    assert accepted["member"]["email"] == "eve@example.test"
    assert accepted["member"]["role"] == "viewer"
