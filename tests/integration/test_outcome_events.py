"""Certificate and backup outcomes end to end: a real coordinator and agent; a certificate report
goes through the real listener and ingest, a real PostgreSQL (the local image) is backed up
through the agent link, and once the agent is stopped a second backup fails. Each outcome is
delivered once as a signed webhook to a loopback receiver."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from coordinator.certificates import CERTIFICATES_KEY
from coordinator.notifications.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from shared.messages.certificates import (
    CertificateFailure,
    CertificateObservation,
    CertificateReport,
)
from tests.db_images import db_images
from tests.docker_client import RaceTolerantDockerClient
from tests.harness import Coordinator, eventually
from tests.integration.stacks import (
    Workload,
    dependency_images,
    remove_session_objects,
    workload,
)
from tests.integration.test_cli_workspace import Cli
from tests.unit.coordinator.support import assert_error

pytestmark = pytest.mark.docker

SECRET = "outcome-secret-0123456789"
DOMAIN = "shop.outcomes.test"
EVENTS = [
    "certificate.issued",
    "certificate.failed",
    "backup.succeeded",
    "backup.failed",
    "restore.failed",
    "backup.verification-failed",
]


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    images: dict[str, Any] = dependency_images(db_images("postgres"))
    harness = Coordinator(
        tmp_path / "coordinator", database_url, allow_private_webhook_targets=True, **images
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        verdict = verify(
            SECRET, body, request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER]
        )
        assert verdict.valid, verdict
        received.append(body)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/in", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/in", received
    finally:
        await runner.cleanup()


def _events(received: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(body) for body in received]


async def _binding(stack: Workload) -> None:
    created = await stack.call(
        "POST",
        "/domain-bindings",
        {
            "projectId": stack.project_id,
            "environmentId": stack.environment_id,
            "resourceId": stack.resource_id,
            "serverId": stack.server_id,
            "domainName": DOMAIN,
        },
    )
    await stack.call(
        "POST",
        f"/domain-bindings/{created['id']}/ownership-confirmations",
        {"method": "manual", "reason": "test"},
    )


def _report(number: int, at: datetime) -> CertificateReport:
    """What an edge reports: the certificate it holds and a renewal that failed since."""
    failure = CertificateFailure(
        domain_name=DOMAIN,
        occurred_at=at + timedelta(minutes=1),
        failure_phase="ca",
        error_code="acme_rate_limited",
        failure_message="the CA rate-limits this name: too many",
        retriable=True,
        retry_after=at + timedelta(minutes=30),
    )
    seen = CertificateObservation(
        domain_name=DOMAIN,
        issuer="Test CA",
        subject_alternative_names=[DOMAIN],
        not_before=at,
        not_after=at + timedelta(days=90),
        fingerprint="cc" * 32,
        key_algorithm="ECDSA-P256",
    )
    return CertificateReport(id=number, certificates=[seen], failures=[failure])


async def _backup(stack: Workload, dependency_id: str, want: str) -> str:
    created = await stack.call("POST", f"/dependency-resources/{dependency_id}/backups", {})
    backup_id = str(created["id"])

    async def settled() -> bool:
        shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
        status = shown["backup"]["status"]
        assert status in ("pending", want), shown
        return bool(status == want)

    await eventually(settled, timeout=120, what=f"backup {backup_id} to be {want}")
    return backup_id


async def test_certificate_and_backup_outcomes_are_delivered_once(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    receiver: tuple[str, list[bytes]],
) -> None:
    url, received = receiver
    client = RaceTolerantDockerClient.from_env()
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        await stack.call(
            "POST",
            "/notification-subscriptions",
            {
                "name": "outcomes",
                "channel": "webhook",
                "events": EVENTS,
                "url": url,
                "signingSecret": SECRET,
            },
        )
        await _binding(stack)

        # The same report twice, through the agent link's listener and the real ingest.
        session = coordinator.registry.get(stack.server_id)
        assert session is not None
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        listener = coordinator.app[CERTIFICATES_KEY]
        await listener.on_message(session, _report(1, at))
        await listener.on_message(session, _report(2, at))

        async def certificate_events() -> bool:
            types = sorted(e["eventType"] for e in _events(received))
            return types == ["certificate.failed", "certificate.issued"]

        await eventually(certificate_events, what="the two certificate webhooks")
        by_type = {e["eventType"]: e for e in _events(received)}
        failed = by_type["certificate.failed"]
        assert failed["subject"]["serverId"] == stack.server_id
        assert failed["subject"]["resourceId"] == stack.resource_id
        assert (failed["data"]["errorCode"], failed["data"]["failurePhase"]) == (
            "acme_rate_limited",
            "ca",
        )
        assert failed["data"]["retryAfter"] is not None
        assert by_type["certificate.issued"]["data"]["fingerprint"] == "cc" * 32

        # The ledger shows both attempts; retry asks the edge, which this agent has not (409).
        listed = await stack.call("GET", "/operator-work?kind=certificate")
        by_id = {i["id"]: i for i in listed["items"]}
        attempt = by_id[failed["subject"]["attemptId"]]
        assert (attempt["status"], attempt["errorCode"]) == ("retry-scheduled", "acme_rate_limited")
        assert by_id[by_type["certificate.issued"]["subject"]["attemptId"]]["status"] == "succeeded"
        response = await coordinator.call(
            "POST", f"/operator-work/{attempt['id']}/retry", token=admin_token, json={}
        )
        assert_error(response, 409, "conflict")

        # A real backup through the agent, then one while the agent is stopped.
        dependency_id = await stack.provision("postgres", "outcomes-db")
        await stack.dependency_ready(dependency_id)
        ready = await _backup(stack, dependency_id, "ready")
        await stack.agent.stop()

        async def offline() -> bool:
            return coordinator.registry.get(stack.server_id) is None

        await eventually(offline, what="the agent link to close")
        lost = await _backup(stack, dependency_id, "failed")

        async def backup_events() -> bool:
            return {"backup.succeeded", "backup.failed"} <= {
                e["eventType"] for e in _events(received)
            }

        await eventually(backup_events, what="the two backup webhooks")
        by_type = {e["eventType"]: e for e in _events(received)}
        assert by_type["backup.succeeded"]["subject"]["backupId"] == ready
        assert by_type["backup.succeeded"]["data"]["sizeBytes"] > 0
        failure = by_type["backup.failed"]
        assert failure["subject"]["backupId"] == lost
        assert failure["subject"]["dependencyResourceId"] == dependency_id
        assert failure["data"]["failureCode"] == "unavailable"
        # Once each: the repeated certificate report queued nothing more.
        assert len(received) == 4, [e["eventType"] for e in _events(received)]

        # The ledger: both backups with their outcome; the failed one is retried (a new
        # backup, failing again while the agent is away) and cannot be canceled.
        listed = await stack.call("GET", "/operator-work?kind=backup")
        by_id = {i["id"]: i for i in listed["items"]}
        assert by_id[ready]["status"] == "succeeded"
        assert (by_id[lost]["status"], by_id[lost]["errorCode"]) == ("failed", "unavailable")
        assert by_id[lost]["errorCategory"] == "infrastructure"
        assert by_id[lost]["nextActions"] == ["retry"]
        assert by_id[lost]["serverId"] == stack.server_id
        response = await coordinator.call(
            "POST", f"/operator-work/{lost}/cancel", token=admin_token, json={"reason": "x"}
        )
        assert_error(response, 409, "conflict")
        retried = await stack.call("POST", f"/operator-work/{lost}/retry", {})
        assert retried["retryOfWorkId"] == lost
        again = str(retried["workId"])
        assert again not in (lost, ready)

        async def failed_again() -> bool:
            return any(e["subject"].get("backupId") == again for e in _events(received))

        await eventually(failed_again, what="the retried backup's webhook")
        shown = await stack.call("GET", f"/operator-work/{again}")
        assert (shown["item"]["kind"], shown["item"]["status"]) == ("backup", "failed")
        # And through the CLI: the failed backups with their error code.
        cli = Cli(coordinator, admin_token, tmp_path / "config")
        table = await cli.ok("work", "list", "--kind", "backup", "--status", "failed")
        assert lost in table
        assert again in table
        assert ready not in table
        assert "unavailable" in table

        # A restore and a verification of the ready backup fail the same way: one event each;
        # the ledger refuses to retry the restore (it overwrites data) and verifies again.
        await stack.call(
            "POST",
            f"/dependency-resources/backups/{ready}/restore",
            {"acknowledgeDataOverwrite": True},
        )
        await stack.call("POST", f"/dependency-resources/backups/{ready}/verify", {})

        def of(event_type: str) -> list[dict[str, Any]]:
            return [e for e in _events(received) if e["eventType"] == event_type]

        async def both() -> bool:
            return bool(of("restore.failed")) and bool(of("backup.verification-failed"))

        await eventually(both, what="the restore and verification webhooks")
        [restore] = of("restore.failed")
        assert restore["data"]["restoreFailureCode"] == "unavailable"
        restore_work = str(restore["data"]["restoreAttemptId"])
        shown = await stack.call("GET", f"/operator-work/{restore_work}")
        assert (shown["item"]["kind"], shown["item"]["status"]) == ("restore", "failed")
        assert shown["item"]["nextActions"] == []
        response = await coordinator.call(
            "POST", f"/operator-work/{restore_work}/retry", token=admin_token, json={}
        )
        assert_error(response, 409, "conflict")
        check = f"vrf_{ready}"
        shown = await stack.call("GET", f"/operator-work/{check}")
        assert (shown["item"]["kind"], shown["item"]["status"]) == ("backup-verification", "failed")
        assert shown["item"]["errorCode"] == "unavailable"
        assert (await stack.call("POST", f"/operator-work/{check}/retry", {}))["workId"] == check

        async def verified_again() -> bool:
            return len(of("backup.verification-failed")) == 2

        await eventually(verified_again, what="the second verification's webhook")
    finally:
        await stack.agent.stop()
        remove_session_objects(client)
