"""Store what an agent reported about its edge's certificates, per domain binding.

A report is the server's whole current picture, so applying it twice changes nothing: a fact
is written only when the fingerprint changes, a failure only once per time it happened.
"""

from datetime import UTC, datetime
from typing import Any, Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.db import models
from coordinator.db.certificate_models import Certificate, CertificateAttempt
from coordinator.dns01.serving import covered_names, covers
from coordinator.domains.dns_check import Resolver
from coordinator.domains.edge_routes import acme_eligible
from coordinator.ids import new_id
from shared.messages.certificates import (
    CertificateFailure,
    CertificateObservation,
    CertificateReport,
)

PROVIDER_KEY: Final = "caddy-acme"
CHALLENGE_TYPE: Final = "http-01"
_UNREACHABLE: Final = "acme_challenge_unreachable"


async def _bindings(server: models.Server) -> dict[str, list[models.DomainBinding]]:
    rows = await models.DomainBinding.filter(
        organization_id=server.organization_id  # type: ignore[attr-defined]
    ).order_by("id")
    found: dict[str, list[models.DomainBinding]] = {}
    for row in rows:
        if row.server_id not in (None, server.id):
            continue
        found.setdefault(row.domain_name, []).append(row)
    return found


async def managed_certificate(binding: models.DomainBinding, server_id: str | None) -> Certificate:
    """The binding's ACME certificate row, created ``pending`` with a requested attempt."""
    row = await Certificate.get_or_none(domain_binding_id=binding.id, source="managed")
    if row is not None:
        return row
    now = datetime.now(UTC)
    row = await Certificate.create(
        id=new_id("crt"),
        domain_binding_id=binding.id,
        server_id=server_id,
        domain_name=binding.domain_name,
        status="pending",
        source="managed",
        provider_key=PROVIDER_KEY,
        challenge_type=CHALLENGE_TYPE,
        created_at=now,
    )
    _ = await CertificateAttempt.create(
        id=new_id("cat"),
        certificate_id=row.id,
        status="requested",
        reason="issue",
        provider_key=PROVIDER_KEY,
        challenge_type=CHALLENGE_TYPE,
        requested_at=now,
    )
    return row


async def _open_attempt(cert: Certificate) -> CertificateAttempt | None:
    return (
        await CertificateAttempt.filter(certificate_id=cert.id, status="requested")
        .order_by("-id")
        .first()
    )


Outcome = tuple[str, str]
"""A transition a report caused: its notification event type and the attempt's id."""


async def _issued(
    server: models.Server, binding: models.DomainBinding, seen: CertificateObservation
) -> Outcome | None:
    cert = await managed_certificate(binding, server.id)
    now = datetime.now(UTC)
    status = "expired" if seen.not_after <= now else "active"
    if cert.fingerprint == seen.fingerprint:
        if cert.status not in (status, "revoked"):
            await Certificate.filter(id=cert.id).update(status=status)
        return None
    renewal = cert.fingerprint is not None
    async with in_transaction():
        await Certificate.filter(id=cert.id).update(
            status=status,
            issuer=seen.issuer,
            subject_alternative_names=list(seen.subject_alternative_names),
            not_before=seen.not_before,
            not_after=seen.not_after,
            issued_at=seen.not_before,
            fingerprint=seen.fingerprint,
            key_algorithm=seen.key_algorithm,
        )
        attempt = await _open_attempt(cert)
        fields: dict[str, Any] = {
            "status": "issued",
            "issued_at": seen.not_before,
            "expires_at": seen.not_after,
            "fingerprint": seen.fingerprint,
        }
        if attempt is not None:
            await CertificateAttempt.filter(id=attempt.id).update(**fields)
        else:
            attempt = await CertificateAttempt.create(
                id=new_id("cat"),
                certificate_id=cert.id,
                reason="renew" if renewal else "issue",
                provider_key=PROVIDER_KEY,
                challenge_type=CHALLENGE_TYPE,
                requested_at=now,
                **fields,
            )
        await _audit(server, "certificate.issued", cert.id, seen.domain_name, seen.fingerprint)
    return ("certificate.renewed" if renewal else "certificate.issued", attempt.id)


async def _audit(server: models.Server, event: str, cert_id: str, domain: str, what: str) -> None:
    await audit.record(
        actor=None,
        event_type=event,
        aggregate_type="certificate",
        aggregate_id=cert_id,
        payload={"domainName": domain, "detail": what, "serverId": server.id},
        actor_kind="agent",
        actor_id=server.id,
        organization_id=server.organization_id,  # type: ignore[attr-defined]
    )


async def _refine(
    failure: CertificateFailure, server: models.Server, resolver: Resolver
) -> tuple[str, str, dict[str, object]]:
    """An unreachable challenge whose name resolves elsewhere is a DNS problem, not a port one."""
    details: dict[str, object] = {}
    if failure.address:
        details["dialedAddress"] = failure.address
    if failure.problem_type:
        details["problemType"] = failure.problem_type
    if failure.error_code != _UNREACHABLE:
        return failure.error_code, failure.failure_message, details
    observation = await resolver.observe(failure.domain_name, server.host)
    details["observedTargets"] = observation.observed_targets
    details["expectedTargets"] = observation.expected_targets
    if observation.status == "mismatched":
        message = (
            f"DNS points elsewhere: {failure.domain_name} resolves to "
            f"{', '.join(observation.observed_targets)}, not to this server "
            f"({', '.join(observation.expected_targets)}); the CA tried {failure.address}. "
            f"{failure.failure_message}"
        )
        return "acme_dns_points_elsewhere", message[:2000], details
    port = failure.address.rpartition(":")[2] if failure.address else "80"
    message = f"challenge port {port} unreachable: {failure.failure_message}"
    return failure.error_code, message[:2000], details


async def _failed(
    server: models.Server,
    binding: models.DomainBinding,
    failure: CertificateFailure,
    resolver: Resolver,
) -> Outcome | None:
    cert = await managed_certificate(binding, server.id)
    if cert.not_before is not None and failure.occurred_at < cert.not_before:
        return None  # superseded: the certificate held now was obtained after this failure
    known = await CertificateAttempt.get_or_none(
        certificate_id=cert.id, failed_at=failure.occurred_at
    )
    if known is not None:
        if known.retry_after != failure.retry_after:
            await CertificateAttempt.filter(id=known.id).update(retry_after=failure.retry_after)
        return None
    code, message, details = await _refine(failure, server, resolver)
    fields: dict[str, Any] = {
        "status": "failed",
        "failed_at": failure.occurred_at,
        "error_code": code,
        "failure_phase": failure.failure_phase,
        "failure_message": message,
        "failure_details": details,
        "retriable": failure.retriable,
        "retry_after": failure.retry_after,
        "challenge_type": failure.challenge_type or CHALLENGE_TYPE,
    }
    async with in_transaction():
        attempt = await _open_attempt(cert)
        if attempt is not None:
            await CertificateAttempt.filter(id=attempt.id).update(**fields)
        else:
            attempt = await CertificateAttempt.create(
                id=new_id("cat"),
                certificate_id=cert.id,
                reason="renew" if cert.fingerprint else "issue",
                provider_key=PROVIDER_KEY,
                requested_at=failure.occurred_at,
                **fields,
            )
        if cert.status in ("pending", "failed"):
            await Certificate.filter(id=cert.id).update(status="failed")
        await _audit(server, "certificate.attempt-failed", cert.id, failure.domain_name, code)
    return ("certificate.failed", attempt.id)


async def apply_report(
    server_id: str, report: CertificateReport, resolver: Resolver
) -> list[Outcome]:
    """Store the report's facts and failures on the bindings they concern; the transitions
    (issued, renewed, failed) it caused, each only the first time it is reported."""
    server = await models.Server.get_or_none(id=server_id)
    if server is None:
        return []
    outcomes: list[Outcome | None] = []
    by_domain = await _bindings(server)
    for seen in report.certificates:
        if seen.source != "managed":
            continue
        for binding in by_domain.get(seen.domain_name, []):
            if binding.tls_mode == "auto":
                outcomes.append(await _issued(server, binding, seen))
    # Oldest first, so a later success or failure is the one that stays latest.
    for failure in sorted(report.failures, key=lambda f: f.occurred_at):
        for binding in by_domain.get(failure.domain_name, []):
            if binding.tls_mode == "auto":
                outcomes.append(await _failed(server, binding, failure, resolver))
    # A name an active wildcard covers is served with it (docs/dns01.md): Caddy orders nothing.
    wildcards = await covered_names(server.organization_id)  # type: ignore[attr-defined]
    for bindings in by_domain.values():
        for binding in bindings:
            if acme_eligible(binding) and not covers(wildcards, binding.domain_name):
                _ = await managed_certificate(binding, server.id)
    return [outcome for outcome in outcomes if outcome is not None]
