"""Certificate and backup outcomes as notification events (issue 19's later sources).

The certificate ingest, the DNS-01 issuer and the backup runner each tell their hooks
(event type, row id) once per transition; this module reads the row and publishes the event.
Event ids are stable per happening (the attempt, the backup, the restore attempt, the
verification time), so a repeated call queues nothing new.
"""

import logging
from typing import Any, Final

from aiohttp import web

from coordinator.backups import RUNNER_KEY
from coordinator.certificates import CERTIFICATES_KEY
from coordinator.db import models
from coordinator.db.backup_models import DependencyBackup
from coordinator.db.certificate_models import Certificate, CertificateAttempt
from coordinator.db.dns01_models import WildcardCertificate, WildcardCertificateAttempt
from coordinator.dns01.plugin import ISSUER_KEY
from coordinator.notifications import NOTIFICATIONS_KEY
from coordinator.notifications.events import Event, Publisher

logger = logging.getLogger(__name__)

CERTIFICATE_EVENTS: Final = frozenset(
    {"certificate.issued", "certificate.renewed", "certificate.failed"}
)
BACKUP_EVENTS: Final = frozenset(
    {
        "backup.succeeded",
        "backup.failed",
        "backup.verified",
        "backup.verification-failed",
        "restore.succeeded",
        "restore.failed",
    }
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _attempt_data(attempt: CertificateAttempt | WildcardCertificateAttempt) -> dict[str, Any]:
    return {
        "attemptStatus": attempt.status,
        "fingerprint": attempt.fingerprint,
        "expiresAt": _iso(attempt.expires_at),
        "errorCode": attempt.error_code,
        "failurePhase": attempt.failure_phase,
        "failureMessage": attempt.failure_message,
        "retriable": attempt.retriable,
        "retryAfter": _iso(attempt.retry_after),
    }


def _certificate_summary(event_type: str, domain: str, attempt: Any) -> str:
    if event_type == "certificate.failed":
        return f"certificate for {domain} failed: {attempt.error_code} ({attempt.failure_phase})"
    verb = "renewed" if event_type == "certificate.renewed" else "issued"
    return f"certificate for {domain} {verb}, valid until {_iso(attempt.expires_at)}"


async def certificate_event(event_type: str, attempt_id: str) -> Event | None:
    """The event of a managed (HTTP-01, agent-reported) certificate attempt's outcome."""
    attempt = await CertificateAttempt.get_or_none(id=attempt_id)
    if attempt is None or event_type not in CERTIFICATE_EVENTS:
        return None
    cert = await Certificate.get(id=attempt.certificate_id)  # type: ignore[attr-defined]
    binding = await models.DomainBinding.get_or_none(id=cert.domain_binding_id)  # type: ignore[attr-defined]
    if binding is None:
        return None
    return Event(
        event_type=event_type,
        event_id=f"{event_type}:{attempt.id}",
        organization_id=binding.organization_id,  # type: ignore[attr-defined]
        summary=_certificate_summary(event_type, cert.domain_name, attempt),
        subject={
            "projectId": binding.project_id,
            "environmentId": binding.environment_id,
            "resourceId": binding.resource_id,  # type: ignore[attr-defined]
            "serverId": cert.server_id,
            "domainBindingId": binding.id,
            "certificateId": cert.id,
            "attemptId": attempt.id,
        },
        data={
            "domainName": cert.domain_name,
            "source": cert.source,
            "reason": attempt.reason,
            "challengeType": attempt.challenge_type,
            "providerKey": attempt.provider_key,
            **_attempt_data(attempt),
        },
    )


async def wildcard_event(event_type: str, attempt_id: str) -> Event | None:
    """The event of a DNS-01 (wildcard) order's outcome."""
    attempt = await WildcardCertificateAttempt.get_or_none(id=attempt_id)
    if attempt is None or event_type not in CERTIFICATE_EVENTS:
        return None
    row = await WildcardCertificate.get(id=attempt.certificate_id)  # type: ignore[attr-defined]
    return Event(
        event_type=event_type,
        event_id=f"{event_type}:{attempt.id}",
        organization_id=row.organization_id,
        summary=_certificate_summary(event_type, row.domain_name, attempt),
        subject={"wildcardCertificateId": row.id, "attemptId": attempt.id},
        data={
            "domainName": row.domain_name,
            "source": "dns-01",
            "challengeType": "dns-01",
            "dnsProviderId": row.dns_provider_id,
            **_attempt_data(attempt),
        },
    )


def _backup_happening(event_type: str, row: DependencyBackup) -> str:
    """What makes this outcome one happening: a backup ends once, a restore per attempt, a
    verification per run."""
    if event_type.startswith("restore."):
        return (
            row.restore_attempt_id or _iso(row.restore_failed_at or row.restore_completed_at) or ""
        )
    if event_type.startswith("backup.verif"):
        return _iso(row.verified_at) or ""
    return row.attempt_id


def _backup_summary(event_type: str, row: DependencyBackup) -> str:
    what = f"backup {row.id} of {row.dependency_kind} {row.dependency_resource_id}"
    if event_type == "backup.failed":
        return f"{what} failed: {row.failure_code}: {row.failure_message}"
    if event_type == "backup.succeeded":
        return f"{what} is ready ({row.size_bytes} bytes)"
    if event_type == "backup.verified":
        return f"{what} verified: {row.verification_message}"
    if event_type == "backup.verification-failed":
        return f"{what} failed verification: {row.verification_message}"
    if event_type == "restore.failed":
        return (
            f"restore of {what} failed: {row.restore_failure_code}: {row.restore_failure_message}"
        )
    return f"restore of {what} succeeded"


async def backup_event(event_type: str, backup_id: str) -> Event | None:
    """The event of a backup, restore or verification outcome."""
    row = await DependencyBackup.get_or_none(id=backup_id)
    if row is None or event_type not in BACKUP_EVENTS:
        return None
    return Event(
        event_type=event_type,
        event_id=f"{event_type}:{row.id}:{_backup_happening(event_type, row)}",
        organization_id=row.organization_id,
        summary=_backup_summary(event_type, row)[:1000],
        subject={
            "projectId": row.project_id,
            "environmentId": row.environment_id,
            "dependencyResourceId": row.dependency_resource_id,
            "serverId": row.server_id,
            "backupId": row.id,
        },
        data={
            "dependencyKind": row.dependency_kind,
            "providerKey": row.provider_key,
            "target": row.target,
            "status": row.status,
            "attemptId": row.attempt_id,
            "sizeBytes": row.size_bytes,
            "completedAt": _iso(row.completed_at),
            "failureCode": row.failure_code,
            "failureMessage": row.failure_message,
            "restoreAttemptId": row.restore_attempt_id,
            "restoreStatus": row.restore_status,
            "restoreFailureCode": row.restore_failure_code,
            "restoreFailureMessage": row.restore_failure_message,
            "verificationStatus": row.verification_status,
            "verifiedAt": _iso(row.verified_at),
            "verificationMessage": row.verification_message,
        },
    )


class OutcomeSources:
    """The hooks the three capabilities call; a failure here never disturbs their work."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    async def _publish(self, build: Any, event_type: str, row_id: str) -> None:
        try:
            event = await build(event_type, row_id)
        except Exception:
            logger.exception("notifications: building %s for %s failed", event_type, row_id)
            return
        if event is not None:
            await self.publisher.publish_quietly(event)

    async def on_certificate_outcome(self, event_type: str, attempt_id: str) -> None:
        """An agent's report issued, renewed or failed a managed certificate."""
        await self._publish(certificate_event, event_type, attempt_id)

    async def on_wildcard_outcome(self, event_type: str, attempt_id: str) -> None:
        """A DNS-01 order issued, renewed or failed a wildcard certificate."""
        await self._publish(wildcard_event, event_type, attempt_id)

    async def on_backup_outcome(self, event_type: str, backup_id: str) -> None:
        """A backup, restore or verification ended."""
        await self._publish(backup_event, event_type, backup_id)


def install(app: web.Application) -> None:
    """Hook the certificate ingest, the DNS-01 issuer and the backup runner to the publisher
    (listed after all three and ``notifications`` in CAPABILITIES)."""
    sources = OutcomeSources(app[NOTIFICATIONS_KEY].publisher)
    app[CERTIFICATES_KEY].outcome_hooks.append(sources.on_certificate_outcome)
    app[ISSUER_KEY].outcome_hooks.append(sources.on_wildcard_outcome)
    app[RUNNER_KEY].outcome_hooks.append(sources.on_backup_outcome)
