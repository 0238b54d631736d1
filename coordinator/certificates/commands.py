"""Operator commands on certificates: issue or renew, retry, revoke, delete (each audited).

Issue-or-renew on a valid managed certificate renews it now (the agent makes Caddy 2.6, which
has no command for it, renew through a one-off automation policy: agent/certificates/renewal.py).
Revoking a managed certificate asks the agent, which holds its key, to revoke it at the CA
(agent/certificates/revocation.py), then has the edge replace it at once.
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.certificates.ingest import CHALLENGE_TYPE, PROVIDER_KEY, managed_certificate
from coordinator.certificates.reads import get_certificate
from coordinator.db import models
from coordinator.db.certificate_models import Certificate, CertificateAttempt
from coordinator.domains import bindings
from coordinator.domains.edge_routes import acme_eligible
from coordinator.ids import new_id
from shared.errors import Conflict, InvalidRequest, PlatformError

logger = logging.getLogger(__name__)

Kick = Callable[[str | None, list[str], bool], Awaitable[None]]
"""Asks a server's edge to try the names now (with True: to renew their valid certificates);
raises ``Unavailable`` when its agent is offline, ``Conflict`` when it cannot renew early
(called before anything is stored, so a refused command leaves no attempt behind)."""

RevokeAtCa = Callable[[str | None, str, str], Awaitable[None]]
"""Has a server's agent revoke (server, domain name, fingerprint) at its CA; raises when not
done (``Unavailable``, ``Conflict``, ``RuntimeFailed``)."""


async def _record(
    actor: Principal, request_id: str, event: str, cert: Certificate, **payload: object
) -> None:
    await audit.record(
        actor=actor,
        event_type=f"certificate.{event}",
        aggregate_type="certificate",
        aggregate_id=cert.id,
        payload={"domainName": cert.domain_name, **payload},
        request_id=request_id,
    )


async def _request_attempt(
    actor: Principal, request_id: str, cert: Certificate, reason: str
) -> str:
    async with in_transaction():
        open_ = (
            await CertificateAttempt.filter(certificate_id=cert.id, status="requested")
            .order_by("-id")
            .first()
        )
        attempt_id = open_.id if open_ is not None else new_id("cat")
        if open_ is None:
            _ = await CertificateAttempt.create(
                id=attempt_id,
                certificate_id=cert.id,
                status="requested",
                reason=reason,
                provider_key=PROVIDER_KEY,
                challenge_type=CHALLENGE_TYPE,
                requested_at=datetime.now(UTC),
            )
        await _record(actor, request_id, f"{reason}-requested", cert, attemptId=attempt_id)
    return attempt_id


def _refuse_ineligible(binding: models.DomainBinding) -> None:
    if binding.tls_mode != "auto":
        raise Conflict(
            f"{binding.domain_name} has tlsMode {binding.tls_mode}: only auto is issued over ACME",
            details={"domainBindingId": binding.id, "tlsMode": binding.tls_mode},
        )
    if not acme_eligible(binding):
        raise Conflict(
            f"the ownership of {binding.domain_name} is not confirmed yet: no certificate is "
            "ordered for it (POST .../ownership-confirmations first)",
            details={"domainBindingId": binding.id, "status": binding.status},
        )


async def issue_or_renew(
    actor: Principal, request_id: str, binding_id: str, kick: Kick
) -> tuple[Certificate, str]:
    """Open an issue (or renewal) attempt for the binding's ACME certificate."""
    binding = await bindings.get_binding(actor, binding_id)
    _refuse_ineligible(binding)
    if binding.server_id is None:
        raise InvalidRequest(
            "the binding has no server yet: deploy the resource first",
            details={"domainBindingId": binding.id},
        )
    existing = await Certificate.get_or_none(domain_binding_id=binding.id, source="managed")
    # A valid certificate is renewed now; otherwise the edge tries to obtain one now.
    early = existing is not None and existing.status == "active" and _not_due(existing)
    # Before anything is stored: an offline agent leaves no attempt behind.
    await kick(binding.server_id, [binding.domain_name], early)
    cert = await managed_certificate(binding, binding.server_id)
    reason = "renew" if cert.fingerprint else "issue"
    return cert, await _request_attempt(actor, request_id, cert, reason)


def _not_due(cert: Certificate) -> bool:
    """Whether the edge would not renew ``cert`` by itself yet (a third of its lifetime before
    it expires, Caddy's default)."""
    if cert.not_before is None or cert.not_after is None:
        return False
    renews_at = cert.not_after - (cert.not_after - cert.not_before) / 3
    return datetime.now(UTC) < renews_at


async def retry(
    actor: Principal, request_id: str, certificate_id: str, kick: Kick
) -> tuple[Certificate, str]:
    """Open a retry attempt after a retriable failure of a managed certificate."""
    cert = await get_certificate(actor, certificate_id)
    if cert.source != "managed":
        raise Conflict("only a managed (ACME) certificate is retried; import a new one instead")
    latest = await CertificateAttempt.filter(certificate_id=cert.id).order_by("-id").first()
    if latest is None or latest.status != "failed":
        raise Conflict(
            "the latest attempt did not fail: nothing to retry",
            details={"attemptStatus": latest.status if latest else None},
        )
    if latest.retriable is False:
        raise Conflict(
            f"the latest failure ({latest.error_code}) is not retriable: fix its cause first",
            details={"errorCode": latest.error_code},
        )
    await kick(cert.server_id, [cert.domain_name], False)
    return cert, await _request_attempt(actor, request_id, cert, "retry")


async def revoke(
    actor: Principal,
    request_id: str,
    certificate_id: str,
    revoke_at_ca: RevokeAtCa,
    kick: Kick,
) -> Certificate:
    """Stop serving an imported certificate (the edge unloads it), or revoke a managed one at
    its CA and have the edge obtain a new one now."""
    cert = await get_certificate(actor, certificate_id)
    if cert.status == "revoked":
        raise Conflict("the certificate is revoked already", details={"certificateId": cert.id})
    if cert.source == "managed":
        if cert.fingerprint is None:
            raise Conflict(
                "no certificate was issued yet: nothing to revoke",
                details={"certificateId": cert.id, "status": cert.status},
            )
        # Before anything is stored: a refusal (offline agent, the CA saying no) changes nothing.
        await revoke_at_ca(cert.server_id, cert.domain_name, cert.fingerprint)
    async with in_transaction():
        await Certificate.filter(id=cert.id).update(status="revoked")
        await _record(actor, request_id, "revoked", cert, source=cert.source)
    if cert.source == "managed":
        await _replace_revoked(actor, request_id, cert, kick)
    return cert


async def _replace_revoked(
    actor: Principal, request_id: str, cert: Certificate, kick: Kick
) -> None:
    """The edge still serves the revoked certificate from its cache: have it renewed now while
    the binding still wants HTTPS (best effort: it is revoked either way)."""
    binding = await models.DomainBinding.get_or_none(certificates__id=cert.id)
    if binding is None or binding.tls_mode != "auto" or not acme_eligible(binding):
        return
    try:
        await kick(cert.server_id, [cert.domain_name], True)
    except PlatformError as exc:
        logger.warning("the revoked %s was not replaced at once: %s", cert.domain_name, exc)
        return
    await _request_attempt(actor, request_id, cert, "renew")


async def delete(actor: Principal, request_id: str, certificate_id: str, confirmed: str) -> None:
    """Delete a certificate that is not in use (the audit trail keeps its history)."""
    cert = await get_certificate(actor, certificate_id)
    if confirmed != cert.id:
        raise InvalidRequest(
            "confirmation.certificateId must repeat the id being deleted",
            details={"certificateId": cert.id},
        )
    if cert.status == "active":
        raise Conflict(
            "the certificate is in use: revoke it (imported) or disable TLS first",
            details={"certificateId": cert.id, "status": cert.status},
        )
    async with in_transaction():
        _ = await Certificate.filter(id=cert.id).delete()
        await _record(actor, request_id, "deleted", cert, fingerprint=cert.fingerprint)
