"""Applying agent reports: facts per binding, renewals, idempotence, failures after issuance.

The reports are built here (the agent side is tested end to end against Caddy and Pebble);
the database and the coordinator are real.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coordinator.certificates.ingest import apply_report
from coordinator.db import models
from coordinator.db.dns01_models import WildcardCertificate
from coordinator.domains.dns_check import Resolver
from shared.messages.certificates import (
    CertificateFailure,
    CertificateObservation,
    CertificateReport,
)
from tests.harness import Coordinator
from tests.unit.coordinator.test_certificates_api import DOMAIN, binding  # noqa: F401

NOW = datetime.now(UTC).replace(microsecond=0)
# No DNS look-up happens for the failures used here (only unreachable challenges are refined).
RESOLVER = Resolver("127.0.0.1:9")


def _seen(fingerprint: str, start: datetime) -> CertificateObservation:
    return CertificateObservation(
        domain_name=DOMAIN,
        issuer="Test CA",
        subject_alternative_names=[DOMAIN],
        not_before=start,
        not_after=start + timedelta(days=90),
        fingerprint=fingerprint,
        key_algorithm="ECDSA-P256",
    )


def _failure(at: datetime, retry: datetime | None = None) -> CertificateFailure:
    return CertificateFailure(
        domain_name=DOMAIN,
        occurred_at=at,
        failure_phase="ca",
        error_code="acme_rate_limited",
        failure_message="the CA rate-limits this name or account: too many",
        retriable=True,
        retry_after=retry,
    )


async def _certificates(coordinator: Coordinator, token: str) -> list[dict[str, Any]]:
    status, body, _ = await coordinator.call("GET", "/certificates", token=token)
    assert status == 200, body
    return list(body["items"])


async def _server_id(coordinator: Coordinator, token: str, binding_id: str) -> str:
    status, body, _ = await coordinator.call("GET", f"/domain-bindings/{binding_id}", token=token)
    assert status == 200, body
    return str(body["binding"]["serverId"])


@pytest.fixture
async def confirmed(
    coordinator: Coordinator,
    admin_token: str,
    binding: dict[str, Any],  # noqa: F811
) -> str:
    status, body, _ = await coordinator.call(
        "POST",
        f"/domain-bindings/{binding['id']}/ownership-confirmations",
        token=admin_token,
        json={"method": "manual", "reason": "test"},
    )
    assert status == 200, body
    return await _server_id(coordinator, admin_token, binding["id"])


async def test_an_unconfirmed_binding_gets_no_row_from_an_empty_report(
    coordinator: Coordinator,
    admin_token: str,
    binding: dict[str, Any],  # noqa: F811
) -> None:
    server_id = await _server_id(coordinator, admin_token, binding["id"])
    await apply_report(server_id, CertificateReport(id=1, certificates=[]), RESOLVER)
    assert await _certificates(coordinator, admin_token) == []


async def test_a_confirmed_binding_under_an_active_wildcard_gets_no_acme_row(
    coordinator: Coordinator, admin_token: str, confirmed: str
) -> None:
    server = await models.Server.get(id=confirmed)
    base = DOMAIN.split(".", 1)[1]  # shop.example.test is covered by *.example.test
    _ = await WildcardCertificate.create(
        id="wcr_ingest",
        organization_id=server.organization_id,  # type: ignore[attr-defined]
        dns_provider_id="dnp_ingest",
        domain_name=base,
        status="active",
        acme_directory="https://ca.example.test/dir",
        created_at=NOW,
    )
    await apply_report(confirmed, CertificateReport(id=1, certificates=[]), RESOLVER)
    assert await _certificates(coordinator, admin_token) == []
    # Once the wildcard is gone, Caddy orders the name again: the ACME row appears.
    _ = await WildcardCertificate.filter(id="wcr_ingest").delete()
    await apply_report(confirmed, CertificateReport(id=2, certificates=[]), RESOLVER)
    assert [c["status"] for c in await _certificates(coordinator, admin_token)] == ["pending"]


async def test_issue_renew_and_repeat(
    coordinator: Coordinator, admin_token: str, confirmed: str
) -> None:
    await apply_report(confirmed, CertificateReport(id=1, certificates=[]), RESOLVER)
    [pending] = await _certificates(coordinator, admin_token)
    assert pending["status"] == "pending"
    assert [a["status"] for a in pending["attempts"]] == ["requested"]

    issued_at = NOW - timedelta(days=80)
    first = CertificateReport(id=2, certificates=[_seen("aa" * 32, issued_at)])
    await apply_report(confirmed, first, RESOLVER)
    await apply_report(confirmed, first, RESOLVER)  # the same picture again: nothing new
    [issued] = await _certificates(coordinator, admin_token)
    assert issued["status"] == "active"
    assert issued["fingerprint"] == "aa" * 32
    assert [(a["reason"], a["status"]) for a in issued["attempts"]] == [("issue", "issued")]

    # A failure while the certificate is valid leaves it active; its retry time is updated.
    failed_at = NOW - timedelta(days=10)
    await apply_report(
        confirmed,
        CertificateReport(
            id=3, certificates=[_seen("aa" * 32, issued_at)], failures=[_failure(failed_at)]
        ),
        RESOLVER,
    )
    retry = failed_at + timedelta(minutes=1)
    await apply_report(
        confirmed,
        CertificateReport(
            id=4, certificates=[_seen("aa" * 32, issued_at)], failures=[_failure(failed_at, retry)]
        ),
        RESOLVER,
    )
    [still] = await _certificates(coordinator, admin_token)
    assert still["status"] == "active"
    assert still["latestAttempt"]["errorCode"] == "acme_rate_limited"
    assert still["latestAttempt"]["retryAfter"] == retry.isoformat().replace("+00:00", "Z")
    assert len(still["attempts"]) == 2

    # Caddy renewed: the new PEM in its storage is a renewal with the new facts.
    renewed_at = NOW - timedelta(days=1)
    await apply_report(
        confirmed, CertificateReport(id=5, certificates=[_seen("bb" * 32, renewed_at)]), RESOLVER
    )
    [renewed] = await _certificates(coordinator, admin_token)
    assert renewed["fingerprint"] == "bb" * 32
    assert renewed["notBefore"] == renewed_at.isoformat().replace("+00:00", "Z")
    assert renewed["latestAttempt"]["reason"] == "renew"
    assert renewed["latestAttempt"]["status"] == "issued"
