"""Certificate and backup outcomes as notification events: each transition is reported once
(a repeated agent report or a repeated hook call queues nothing new), and the events carry
what a receiver needs (error code, failure phase, retry time; failure code of a backup)."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from coordinator.backups import RUNNER_KEY
from coordinator.certificates.ingest import apply_report
from coordinator.db.backup_models import DependencyBackup
from coordinator.db.notification_models import NotificationDelivery, NotificationSubscription
from coordinator.notifications import NOTIFICATIONS_KEY
from coordinator.notifications.events import EVENT_TYPES
from coordinator.notifications.outcome_sources import (
    BACKUP_EVENTS,
    CERTIFICATE_EVENTS,
    OutcomeSources,
    backup_event,
    certificate_event,
)
from coordinator.notifications.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from shared.messages.certificates import CertificateReport
from tests.edge_proxy import free_port
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.support import assert_error
from tests.unit.coordinator.test_certificate_ingest import (  # noqa: F401
    NOW,
    RESOLVER,
    _failure,
    _seen,
    confirmed,
)
from tests.unit.coordinator.test_certificates_api import DOMAIN, binding  # noqa: F401
from tests.unit.coordinator.test_dns01_api import _provider, private_ok  # noqa: F401


async def _subscribe(coordinator: Coordinator, token: str, events: list[str]) -> str:
    status, body, _ = await coordinator.call(
        "POST",
        "/notification-subscriptions",
        token=token,
        json={
            "name": "outcomes",
            "channel": "webhook",
            "events": events,
            "url": "https://hooks.example.test/in",
            "signingSecret": "outcome-secret-0123456789",
            "enabled": True,
        },
    )
    assert status == 201, body
    return str(body["id"])


def test_every_outcome_has_a_catalogued_event_type() -> None:
    assert set(EVENT_TYPES) >= (CERTIFICATE_EVENTS | BACKUP_EVENTS)


async def test_certificate_transitions_are_reported_once(
    coordinator: Coordinator,
    admin_token: str,
    confirmed: str,  # noqa: F811
) -> None:
    assert await apply_report(confirmed, CertificateReport(id=1, certificates=[]), RESOLVER) == []
    issued_at = NOW - timedelta(days=80)
    first = CertificateReport(id=2, certificates=[_seen("aa" * 32, issued_at)])
    [(kind, issued_attempt)] = await apply_report(confirmed, first, RESOLVER)
    assert kind == "certificate.issued"
    assert await apply_report(confirmed, first, RESOLVER) == []  # the same picture again

    failed_at = NOW - timedelta(days=10)
    retry = failed_at + timedelta(minutes=5)
    failing = CertificateReport(
        id=3, certificates=[_seen("aa" * 32, issued_at)], failures=[_failure(failed_at, retry)]
    )
    [(kind, failed_attempt)] = await apply_report(confirmed, failing, RESOLVER)
    assert kind == "certificate.failed"
    assert await apply_report(confirmed, failing, RESOLVER) == []

    renewed = CertificateReport(id=4, certificates=[_seen("bb" * 32, NOW - timedelta(days=1))])
    [(kind, renewed_attempt)] = await apply_report(confirmed, renewed, RESOLVER)
    assert kind == "certificate.renewed"
    assert len({issued_attempt, failed_attempt, renewed_attempt}) == 3

    event = await certificate_event("certificate.failed", failed_attempt)
    assert event is not None
    assert event.event_id == f"certificate.failed:{failed_attempt}"
    assert event.subject["serverId"] == confirmed
    assert event.data["domainName"] == DOMAIN
    assert event.data["errorCode"] == "acme_rate_limited"
    assert event.data["failurePhase"] == "ca"
    assert event.data["retriable"] is True
    assert event.data["retryAfter"] == retry.isoformat()
    assert "acme_rate_limited" in event.summary
    shown = await certificate_event("certificate.renewed", renewed_attempt)
    assert shown is not None
    assert (shown.data["reason"], shown.data["fingerprint"]) == ("renew", "bb" * 32)
    assert await certificate_event("certificate.failed", "cat_missing") is None

    # Published to a matching subscription once, however often the hook is told.
    await _subscribe(coordinator, admin_token, ["certificate.failed", "certificate.renewed"])
    sources = OutcomeSources(coordinator.app[NOTIFICATIONS_KEY].publisher)
    for _ in range(2):
        await sources.on_certificate_outcome("certificate.failed", failed_attempt)
        await sources.on_certificate_outcome("certificate.issued", issued_attempt)  # not wanted
    rows = await NotificationDelivery.all()
    assert [r.event_type for r in rows] == ["certificate.failed"]
    data: Any = rows[0].payload["data"]
    assert data["retryAfter"] == retry.isoformat()


async def _backup(**fields: Any) -> DependencyBackup:
    now = datetime.now(UTC)
    return await DependencyBackup.create(
        id="dbk_outcome",
        organization_id="org_outcome",
        project_id="prj_outcome",
        environment_id="env_outcome",
        dependency_resource_id="dep_outcome",
        server_id="srv_outcome",
        dependency_kind="postgres",
        provider_key="berth-postgres",
        attempt_id="bka_outcome",
        requested_at=now,
        created_at=now,
        **fields,
    )


async def test_backup_events_are_one_per_backup_restore_attempt_and_verification(
    coordinator: Coordinator,
) -> None:
    now = datetime.now(UTC)
    row = await _backup(
        status="failed",
        failed_at=now,
        failure_code="unavailable",
        failure_message="the server's agent is not connected",
    )
    failed = await backup_event("backup.failed", row.id)
    assert failed is not None
    assert failed.event_id == "backup.failed:dbk_outcome:bka_outcome"
    assert failed.data["failureCode"] == "unavailable"
    assert failed.subject["dependencyResourceId"] == "dep_outcome"
    assert "unavailable" in failed.summary

    await DependencyBackup.filter(id=row.id).update(
        restore_attempt_id="rsa_1", restore_status="failed", restore_failure_code="x"
    )
    first = await backup_event("restore.failed", row.id)
    await DependencyBackup.filter(id=row.id).update(restore_attempt_id="rsa_2")
    second = await backup_event("restore.failed", row.id)
    assert first is not None
    assert second is not None
    assert first.event_id != second.event_id  # two restore attempts, two events

    await DependencyBackup.filter(id=row.id).update(verification_status="passed", verified_at=now)
    verified = await backup_event("backup.verified", row.id)
    later = now + timedelta(hours=1)
    await DependencyBackup.filter(id=row.id).update(verified_at=later)
    again = await backup_event("backup.verified", row.id)
    assert verified is not None
    assert again is not None
    assert verified.event_id != again.event_id
    assert await backup_event("backup.nonsense", row.id) is None
    assert await backup_event("backup.failed", "dbk_missing") is None


async def test_certificate_attempts_in_the_operator_work_ledger(
    coordinator: Coordinator,
    admin_token: str,
    confirmed: str,  # noqa: F811
) -> None:
    issued_at = NOW - timedelta(days=80)
    # From the clock at this test, not at import: a suite slower than the margin made it past.
    retry = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    failing = CertificateReport(
        id=1,
        certificates=[_seen("aa" * 32, issued_at)],
        failures=[_failure(NOW - timedelta(minutes=1), retry)],
    )
    [(_, failed_id)] = [
        o for o in await apply_report(confirmed, failing, RESOLVER) if "fail" in o[0]
    ]

    async def ledger(path: str) -> dict[str, Any]:
        status, body, _ = await coordinator.call("GET", path, token=admin_token)
        assert status == 200, body
        return dict(body)

    listed = await ledger("/operator-work?kind=certificate")
    by_id = {item["id"]: item for item in listed["items"]}
    assert len(by_id) == 2
    failed = by_id[failed_id]
    # The edge backs off by itself until retryAfter; the operator may retry now.
    assert (failed["kind"], failed["status"]) == ("certificate", "retry-scheduled")
    assert (failed["errorCode"], failed["errorCategory"]) == ("acme_rate_limited", "ca")
    assert failed["nextActions"] == ["retry"]
    assert failed["serverId"] == confirmed
    assert failed["certificateId"]
    assert failed["safeDetails"]["retryAfter"] == retry.isoformat()
    [issued] = [i for i in by_id.values() if i["id"] != failed_id]
    assert (issued["status"], issued["nextActions"]) == ("succeeded", [])
    shown = await ledger(f"/operator-work/{failed_id}")
    assert shown["item"]["id"] == failed_id

    # Retry asks the server's edge to try now: its agent is not connected here (503, nothing
    # stored); the other actions are refused with the reason.
    response = await coordinator.call(
        "POST", f"/operator-work/{failed_id}/retry", token=admin_token, json={}
    )
    assert_error(response, 503, "unavailable")
    for action, body in (("cancel", {"reason": "x"}), ("dead-letter", {"reason": "x"})):
        response = await coordinator.call(
            "POST", f"/operator-work/{failed_id}/{action}", token=admin_token, json=body
        )
        assert_error(response, 409, "conflict")
    listed_again = await ledger("/operator-work?kind=certificate")
    assert len(listed_again["items"]) == 2
    response = await coordinator.call("GET", "/operator-work/cat_unknown", token=admin_token)
    assert_error(response, 404, "not_found")


async def test_a_backup_a_restart_interrupted_is_reported_failed_once(
    coordinator: Coordinator, admin_token: str
) -> None:
    await _subscribe(coordinator, admin_token, ["backup.failed"])
    subscription = await NotificationSubscription.get(name="outcomes")
    row = await _backup(status="pending")
    await DependencyBackup.filter(id=row.id).update(organization_id=subscription.organization_id)
    runner = coordinator.app[RUNNER_KEY]
    await runner.fail_interrupted()  # what the coordinator does when it starts
    await runner.fail_interrupted()  # nothing pending any more: nothing new
    [delivery] = await NotificationDelivery.filter(event_type="backup.failed")
    data: Any = delivery.payload["data"]
    assert (data["status"], data["failureCode"]) == ("failed", "interrupted")
    subject: Any = delivery.payload["subject"]
    assert subject["backupId"] == row.id


async def test_a_failed_dns01_order_is_delivered_as_certificate_failed(
    private_ok: Coordinator,  # noqa: F811
) -> None:
    c = private_ok
    token = await c.bootstrap()
    received: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        verdict = verify(
            "outcome-secret-0123456789",
            body,
            request.headers[TIMESTAMP_HEADER],
            request.headers[SIGNATURE_HEADER],
        )
        assert verdict.valid, verdict
        received.append(json.loads(body))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/in", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        status, body, _ = await c.call(
            "POST",
            "/notification-subscriptions",
            token=token,
            json={
                "name": "certs",
                "channel": "webhook",
                "events": ["certificate.failed"],
                "url": f"http://127.0.0.1:{runner.addresses[0][1]}/in",
                "signingSecret": "outcome-secret-0123456789",
            },
        )
        assert status == 201, body
        status, provider, _ = await c.call(
            "POST",
            "/dns-providers",
            token=token,
            json=_provider(serverAddress=f"127.0.0.1:{free_port()}", zone="dns01.test"),
        )
        assert status == 201, provider
        status, answer, _ = await c.call(
            "POST",
            "/wildcard-certificates",
            token=token,
            json={"domainName": "apps.dns01.test", "dnsProviderId": provider["id"]},
        )
        assert status == 201, answer

        async def delivered() -> bool:
            return bool(received)

        await eventually(delivered, timeout=30, what="the certificate.failed webhook")
        [event] = received
        assert event["eventType"] == "certificate.failed"
        assert event["subject"]["wildcardCertificateId"] == answer["certificateId"]
        data = event["data"]
        assert (data["source"], data["domainName"]) == ("dns-01", "apps.dns01.test")
        assert (data["errorCode"], data["failurePhase"]) == ("dns_server_unreachable", "dns")
        assert data["retriable"] is True
        assert data["retryAfter"] is not None

        # The ledger lists the order; retry orders again now, and that attempt fails too.
        status, listed, _ = await c.call("GET", "/operator-work?kind=certificate", token=token)
        assert status == 200, listed
        [work] = listed["items"]
        assert work["id"] == event["subject"]["attemptId"]
        assert (work["status"], work["errorCode"]) == ("retry-scheduled", "dns_server_unreachable")
        assert work["certificateId"] == answer["certificateId"]
        assert work["nextActions"] == ["retry"]
        assert_error(
            await c.call("POST", f"/operator-work/{work['id']}/cancel", token=token, json={}),
            409,
            "conflict",
        )
        status, retried, _ = await c.call(
            "POST", f"/operator-work/{work['id']}/retry", token=token, json={}
        )
        assert status == 200, retried
        assert retried["retryOfWorkId"] == work["id"]
        assert retried["workId"] != work["id"]

        async def failed_again() -> bool:
            return len(received) == 2

        await eventually(failed_again, timeout=30, what="the retried order's webhook")
        assert received[1]["subject"]["attemptId"] == retried["workId"]
    finally:
        await runner.cleanup()
