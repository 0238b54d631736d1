"""Notifications end to end: a real agent's failed deployment (real Docker) is delivered once to a
signed webhook (a real aiohttp receiver on loopback, which first answers 503 so the outbox
retries) and once by e-mail (a real aiosmtpd server on loopback)."""

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import docker
import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.harness import Coordinator, eventually, serving
from tests.integration.stacks import TERMINAL_STATUSES, workload

pytestmark = pytest.mark.docker
SIGNING_SECRET = "notify-signing-secret-0123456789"


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """Allowed to call this test's loopback receivers; retries after 0.2 s, 0.4 s, ..."""
    async with serving(
        tmp_path / "coordinator",
        database_url,
        allow_private_webhook_targets=True,
        notification_retry_first_pause_seconds=0.2,
    ) as harness:
        yield harness


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, int(runner.addresses[0][1])


async def test_a_failed_deployment_sends_one_signed_webhook_and_one_email(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    accepted: list[dict[str, Any]] = []
    raw: list[tuple[bytes, str, str]] = []
    answers = [503]  # the first request is refused, so the delivery is retried

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Berth-Timestamp", "")
        sent = request.headers.get("X-Berth-Signature", "")
        expected = hmac.new(
            SIGNING_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(f"v1={expected}", sent):
            return web.Response(status=401, text="bad signature")
        if abs(time.time() - int(timestamp)) > 300:
            return web.Response(status=401, text="stale")
        if answers:
            return web.Response(status=answers.pop())
        raw.append((body, timestamp, sent))
        accepted.append(json.loads(body))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/berth", receive)
    receiver, hook_port = await _serve(app)
    mailbox = Mailbox()
    loop = asyncio.get_running_loop()
    smtp_server = await loop.create_server(
        lambda: SMTP(mailbox, hostname="mail.test"), "127.0.0.1", 0
    )
    smtp_port = int(smtp_server.sockets[0].getsockname()[1])

    stack = await workload(
        coordinator, admin_token, tmp_path / "agent", "sleep 600", health_check=True
    )
    try:
        hook = await stack.call(
            "POST",
            "/notification-subscriptions",
            {
                "name": "ops webhook",
                "channel": "webhook",
                "events": ["deployment.failed"],
                "url": f"http://127.0.0.1:{hook_port}/hooks/berth",
                "signingSecret": SIGNING_SECRET,
            },
        )
        mail = await stack.call(
            "POST",
            "/notification-subscriptions",
            {
                "name": "ops mail",
                "channel": "email",
                "events": ["deployment.failed", "deployment.succeeded"],
                "email": {
                    "to": ["ops@example.test"],
                    "fromAddress": "berth@example.test",
                    "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
                },
            },
        )
        # Nothing listens on 8080: the health check fails and so does the deployment.
        await stack.configure(
            "health-policy",
            {
                "healthCheck": {
                    "enabled": True,
                    "intervalSeconds": 0.2,
                    "timeoutSeconds": 1,
                    "retries": 2,
                    "http": {"path": "/"},
                }
            },
        )
        deployment_id = (
            await stack.call(
                "POST",
                "/deployments",
                {
                    "projectId": stack.project_id,
                    "environmentId": stack.environment_id,
                    "resourceId": stack.resource_id,
                    "serverId": stack.server_id,
                },
            )
        )["id"]

        async def ended() -> bool:
            shown = await stack.call("GET", f"/deployments/{deployment_id}")
            return shown["deployment"]["status"] in TERMINAL_STATUSES

        await eventually(ended, timeout=120, what="the deployment to end")
        shown = await stack.call("GET", f"/deployments/{deployment_id}")
        assert shown["deployment"]["status"] == "failed", shown

        async def delivered(subscription_id: str) -> bool:
            log = await stack.call(
                "GET", f"/notification-subscriptions/{subscription_id}/deliveries"
            )
            return [d["status"] for d in log["items"]] == ["succeeded"]

        await eventually(lambda: delivered(hook["id"]), what="the webhook delivery")
        await eventually(lambda: delivered(mail["id"]), what="the e-mail delivery")

        assert len(accepted) == 1
        event = accepted[0]
        assert event["schemaVersion"] == "notifications.event/v1"
        assert event["eventType"] == "deployment.failed"
        assert event["subject"]["deploymentId"] == deployment_id
        assert event["subject"]["resourceId"] == stack.resource_id
        assert event["data"]["errorMessage"] == shown["deployment"]["errorMessage"]

        log = await stack.call("GET", f"/notification-subscriptions/{hook['id']}/deliveries")
        attempts = log["items"][0]["attempts"]
        assert [a["statusCode"] for a in attempts] == [503, 204]
        assert log["items"][0]["id"] == event["deliveryId"]

        assert len(mailbox.messages) == 1
        envelope = mailbox.messages[0]
        assert envelope.rcpt_tos == ["ops@example.test"]
        assert envelope.mail_from == "berth@example.test"
        message = message_from_bytes(bytes(envelope.original_content or b""))
        assert message["X-Berth-Event"] == "deployment.failed"
        assert deployment_id in str(message["Subject"])

        # A receiver without HMAC code asks Berth; a tampered body is refused.
        body, timestamp, signature = raw[0]
        verdict = await stack.call(
            "POST",
            "/webhooks/verify",
            {
                "subscriptionId": hook["id"],
                "payload": body.decode(),
                "timestamp": timestamp,
                "signature": signature,
            },
        )
        assert (verdict["valid"], verdict["reason"]) == (True, None)
        tampered = await stack.call(
            "POST",
            "/webhooks/verify",
            {
                "subscriptionId": hook["id"],
                "payload": body.decode().replace("failed", "succeeded"),
                "timestamp": timestamp,
                "signature": signature,
            },
        )
        assert (tampered["valid"], tampered["reason"]) == (False, "signature-mismatch")

        # The operator work ledger shows the deployment as failed work to diagnose or retry.
        ledger = await stack.call(
            "GET", f"/operator-work?kind=deployment&resourceId={stack.resource_id}"
        )
        assert [i["id"] for i in ledger["items"]] == [deployment_id]
        work = ledger["items"][0]
        assert (work["status"], work["kind"], work["operationKey"]) == (
            "failed",
            "deployment",
            "deployment.create",
        )
        assert work["errorCode"] == shown["deployment"]["errorCode"]
        assert work["nextActions"] == ["diagnostic", "retry"]
        assert work["resourceId"] == stack.resource_id
        status, refused, _ = await coordinator.call(
            "POST",
            f"/operator-work/{deployment_id}/dead-letter",
            token=admin_token,
            json={"reason": "no"},
        )
        assert (status, refused["error"]["code"]) == (409, "conflict")
        retried = await stack.call("POST", f"/operator-work/{deployment_id}/retry", {})
        assert retried["retryOfWorkId"] == deployment_id
        again = await stack.call("GET", f"/deployments/{retried['workId']}")
        assert again["deployment"]["sourceDeploymentId"] == deployment_id
        assert again["deployment"]["triggerKind"] == "retry"
        status, canceled, _ = await coordinator.call(
            "POST",
            f"/operator-work/{retried['workId']}/cancel",
            token=admin_token,
            json={"reason": "enough"},
        )
        if status == 409:  # the retry failed its health check before the cancel arrived
            later = await stack.call("GET", f"/deployments/{retried['workId']}")
            assert later["deployment"]["status"] == "failed", later
        else:
            assert (status, canceled["workId"]) == (200, retried["workId"])
    finally:
        await stack.agent.stop()
        smtp_server.close()
        await smtp_server.wait_closed()
        await receiver.cleanup()
