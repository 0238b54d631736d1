"""Notification subscriptions: validation envelopes, sealed and masked secrets, scoping, audit,
and the outbox against real loopback receivers (presets, non-retriable answers, retries)."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from coordinator.db.notification_models import NotificationDelivery, NotificationSubscription
from coordinator.notifications import signing
from coordinator.notifications.channels import email_message, render
from tests.harness import Coordinator, eventually, serving
from tests.unit.coordinator.support import assert_error, audit_events, problem_fields
from tests.unit.coordinator.test_projects_api import scoped_token

SECRET = "unit-signing-secret-0123456789"


def test_signatures_cover_timestamp_and_body_within_the_replay_window() -> None:
    body = b'{"eventType":"deployment.failed"}'
    headers = signing.signed_headers(SECRET, body, now=1_000_000)
    stamp, sig = headers[signing.TIMESTAMP_HEADER], headers[signing.SIGNATURE_HEADER]
    assert stamp == "1000000"
    assert signing.verify(SECRET, body, stamp, sig, now=1_000_100).valid
    # The same request replayed after the window, a changed body, another secret, a changed
    # timestamp: all refused, each with its reason.
    late = signing.verify(SECRET, body, stamp, sig, now=1_000_000 + 301)
    assert (late.valid, late.reason, late.age_seconds) == (False, "timestamp-outside-window", 301)
    assert signing.verify(SECRET, body + b" ", stamp, sig, now=1_000_000).reason == (
        "signature-mismatch"
    )
    assert signing.verify("x" * 30, body, stamp, sig, now=1_000_000).reason == (
        "signature-mismatch"
    )
    assert signing.verify(SECRET, body, "1000001", sig, now=1_000_000).reason == (
        "signature-mismatch"
    )
    assert signing.verify(SECRET, body, "soon", sig).reason == "malformed-timestamp"
    # During a secret rotation a receiver may be sent (and accept) either signature.
    assert signing.verify(SECRET, body, stamp, f"v1=00, {sig}", now=1_000_000).valid


async def _create(coordinator: Coordinator, token: str, body: dict[str, Any]) -> Any:
    return await coordinator.call("POST", "/notification-subscriptions", token=token, json=body)


def _webhook(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "hook",
        "channel": "webhook",
        "events": ["deployment.failed"],
        "url": url,
        "signingSecret": SECRET,
        **extra,
    }


async def test_bad_subscriptions_are_refused_with_the_envelope_and_nothing_stored(
    coordinator: Coordinator, admin_token: str
) -> None:
    error = assert_error(
        await _create(
            coordinator, admin_token, _webhook("https://hooks.example.com/x", events=["nope"])
        ),
        400,
        "invalid_request",
    )
    assert problem_fields(error) == {"events"}
    # Loopback, private and metadata addresses are refused unless the operator allows them.
    for url in ("http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://localhost/x"):
        assert_error(await _create(coordinator, admin_token, _webhook(url)), 400, "invalid_request")
    no_secret = _webhook("https://hooks.example.com/x")
    del no_secret["signingSecret"]
    assert_error(await _create(coordinator, admin_token, no_secret), 400, "invalid_request")
    assert_error(
        await _create(
            coordinator,
            admin_token,
            {"name": "m", "channel": "email", "events": ["deployment.failed"]},
        ),
        400,
        "invalid_request",
    )
    error = assert_error(
        await _create(
            coordinator,
            admin_token,
            {
                "name": "m",
                "channel": "email",
                "events": ["deployment.failed"],
                "email": {
                    "to": ["not an address"],
                    "fromAddress": "b@example.com",
                    "smtp": {"host": "mail.example.com"},
                },
            },
        ),
        400,
        "invalid_request",
    )
    assert problem_fields(error) == {"email.to"}
    assert await NotificationSubscription.all().count() == 0


async def test_secrets_are_sealed_masked_and_kept_out_of_the_audit_trail(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, hook, _ = await _create(
        coordinator, admin_token, _webhook("https://hooks.example.com/in")
    )
    assert status == 201, hook
    slack_url = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
    status, slack, _ = await _create(
        coordinator,
        admin_token,
        {"name": "chat", "channel": "slack", "events": ["deployment.succeeded"], "url": slack_url},
    )
    assert status == 201, slack
    status, shown, _ = await coordinator.call(
        "GET", f"/notification-subscriptions/{hook['id']}", token=admin_token
    )
    assert status == 200, shown
    assert shown["subscription"]["signingSecret"] == "****"
    assert shown["subscription"]["url"] == "https://hooks.example.com/in"
    status, listed, _ = await coordinator.call(
        "GET", "/notification-subscriptions", token=admin_token
    )
    assert status == 200, listed
    chat = next(i for i in listed["items"] if i["id"] == slack["id"])
    assert chat["url"] == "https://hooks.slack.com/****"
    assert "deployment.failed" in listed["eventTypes"]
    rows = {r.id: r for r in await NotificationSubscription.all()}
    for row in rows.values():
        assert row.secret_sealed
        assert SECRET not in row.secret_sealed
        assert "XXXXSECRETXXXX" not in (row.secret_sealed + str(row.url))
    trail = json.dumps(await audit_events(coordinator, admin_token))
    assert "notification-subscription-created" in trail
    assert SECRET not in trail
    assert "XXXXSECRETXXXX" not in trail

    status, _, _ = await coordinator.call(
        "POST",
        f"/notification-subscriptions/{hook['id']}",
        token=admin_token,
        json={"enabled": False, "events": ["server.offline"]},
    )
    assert status == 200
    row = await NotificationSubscription.get(id=hook["id"])
    assert (row.enabled, row.events) == (False, ["server.offline"])
    assert row.secret_sealed == rows[hook["id"]].secret_sealed  # untouched when not given
    events = await audit_events(coordinator, admin_token, aggregateId=hook["id"])
    assert [e["eventType"] for e in events] == [
        "notification-subscription-created",
        "notification-subscription-configured",
    ]


async def test_other_organizations_and_narrow_tokens_are_kept_out(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, hook, _ = await _create(
        coordinator, admin_token, _webhook("https://hooks.example.com/in")
    )
    assert status == 201
    await NotificationSubscription.filter(id=hook["id"]).update(organization_id="org_other")
    for method, path in (
        ("GET", f"/notification-subscriptions/{hook['id']}"),
        ("GET", f"/notification-subscriptions/{hook['id']}/deliveries"),
        ("DELETE", f"/notification-subscriptions/{hook['id']}"),
        ("POST", f"/notification-subscriptions/{hook['id']}/test"),
    ):
        assert_error(await coordinator.call(method, path, token=admin_token), 404, "not_found")
    reader = await scoped_token(coordinator, admin_token, ["notifications:read"])
    assert_error(
        await _create(coordinator, reader, _webhook("https://hooks.example.com/in")),
        403,
        "forbidden",
    )
    narrow = await scoped_token(
        coordinator, admin_token, ["notifications:write"], projectIds=["prj_x"]
    )
    assert_error(
        await _create(coordinator, narrow, _webhook("https://hooks.example.com/in")),
        403,
        "forbidden",
    )


@pytest.fixture
async def open_coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """A coordinator allowed to call loopback receivers, retrying fast, two attempts at most."""
    async with serving(
        tmp_path / "open",
        database_url,
        allow_private_webhook_targets=True,
        notification_retry_first_pause_seconds=0.1,
        notification_max_attempts=2,
    ) as harness:
        yield harness


async def test_presets_refusals_and_retries_are_logged_per_delivery(
    open_coordinator: Coordinator,
) -> None:
    coordinator = open_coordinator
    token = await coordinator.bootstrap()
    bodies: dict[str, list[Any]] = {"slack": [], "discord": [], "gone": []}

    def keep(name: str, status: int) -> Any:
        async def handler(request: web.Request) -> web.Response:
            bodies[name].append(await request.json())
            return web.Response(status=status)

        return handler

    app = web.Application()
    app.router.add_post("/slack", keep("slack", 200))
    app.router.add_post("/discord", keep("discord", 204))
    app.router.add_post("/gone", keep("gone", 410))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        made = {}
        for name, channel, url in (
            ("slack", "slack", f"{base}/slack"),
            ("discord", "discord", f"{base}/discord"),
            ("gone", "webhook", f"{base}/gone"),
            # A closed port: every attempt fails to connect, so it is retried, then failed.
            ("down", "webhook", "http://127.0.0.1:9/down"),
        ):
            body: dict[str, Any] = {
                "name": name,
                "channel": channel,
                "events": ["deployment.failed"],
                "url": url,
            }
            if channel == "webhook":
                body["signingSecret"] = SECRET
            status, answer, _ = await _create(coordinator, token, body)
            assert status == 201, answer
            status, queued, _ = await coordinator.call(
                "POST", f"/notification-subscriptions/{answer['id']}/test", token=token
            )
            assert status == 202, queued
            made[name] = answer["id"]

        async def settled(name: str) -> dict[str, Any] | None:
            status, log, _ = await coordinator.call(
                "GET", f"/notification-subscriptions/{made[name]}/deliveries", token=token
            )
            assert status == 200, log
            item = log["items"][0]
            return item if item["status"] in ("succeeded", "failed") else None

        results: dict[str, dict[str, Any]] = {}

        async def all_settled() -> bool:
            for name in made:
                found = await settled(name)
                if found is not None:
                    results[name] = found
            return len(results) == len(made)

        await eventually(all_settled, what="every test delivery to settle")
        assert results["slack"]["status"] == "succeeded"
        assert bodies["slack"][0]["text"].startswith("[Berth] notification.test:")
        assert set(bodies["slack"][0]) == {"text"}
        assert results["discord"]["status"] == "succeeded"
        assert bodies["discord"][0]["content"].startswith("[Berth] notification.test:")
        # A 410 will not change by asking again: one attempt, its code logged.
        assert results["gone"]["status"] == "failed"
        assert [a["statusCode"] for a in results["gone"]["attempts"]] == [410]
        assert len(bodies["gone"]) == 1
        down = results["down"]
        assert (down["status"], down["attemptCount"], down["errorCode"]) == (
            "failed",
            2,
            "unreachable",
        )
        assert [a["statusCode"] for a in down["attempts"]] == [None, None]
    finally:
        await runner.cleanup()


async def test_a_retry_scheduled_delivery_survives_a_coordinator_restart(
    tmp_path: Path, database_url: str
) -> None:
    answers = [503]
    bodies: list[Any] = []

    async def receive(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.Response(status=answers[0])

    app = web.Application()
    app.router.add_post("/in", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    coordinator = Coordinator(
        tmp_path / "durable",
        database_url,
        allow_private_webhook_targets=True,
        notification_retry_first_pause_seconds=1.0,
    )
    await coordinator.start()
    try:
        token = await coordinator.bootstrap()
        status, sub, _ = await _create(
            coordinator, token, _webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/in")
        )
        assert status == 201, sub
        status, queued, _ = await coordinator.call(
            "POST", f"/notification-subscriptions/{sub['id']}/test", token=token
        )
        assert status == 202, queued

        async def scheduled() -> bool:
            row = await NotificationDelivery.get(id=queued["deliveryId"])
            return row.status == "retry-scheduled"

        await eventually(scheduled, what="the first attempt to fail")
        await coordinator.stop()
        answers[0] = 200
        await coordinator.start()

        async def delivered() -> bool:
            row = await NotificationDelivery.get(id=queued["deliveryId"])
            return row.status == "succeeded"

        await eventually(delivered, what="the retry after the restart")
        row = await NotificationDelivery.get(id=queued["deliveryId"])
        assert [a["statusCode"] for a in row.attempts] == [503, 200]
        assert len(bodies) == 2
        assert bodies[0]["deliveryId"] == bodies[1]["deliveryId"] == row.id
    finally:
        await coordinator.close()
        await runner.cleanup()


def test_multi_line_summaries_make_one_line_subjects_and_chat_texts() -> None:
    payload = {
        "eventType": "deployment.failed",
        "deliveryId": "ndl_x",
        "summary": "deployment failed: step 1\r\nstep 2\nTo: evil@example.com",
    }
    settings = {"to": ["ops@example.com"], "fromAddress": "berth@example.com"}
    message = email_message(settings, payload)
    assert message["Subject"] == (
        "[Berth] deployment.failed: deployment failed: step 1 step 2 To: evil@example.com"
    )
    assert message["To"] == "ops@example.com"
    assert "\n" not in render("slack", payload)["text"]
