"""Wildcard certificates: request, show, retry and delete (each audited); the order itself runs in
``coordinator.dns01.issuer``."""

from datetime import UTC, datetime
from typing import Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db.dns01_models import WildcardCertificate, WildcardCertificateAttempt
from coordinator.dns01.providers import get_provider, narrowed, require_organization_wide
from coordinator.domains.names import normalize_domain
from coordinator.ids import new_id
from coordinator.lookup import visible_or_404
from shared.errors import Conflict, InvalidRequest

PROVIDER_KEY: Final = "acme-dns01-rfc2136"
CHALLENGE_TYPE: Final = "dns-01"


def names_of(domain_name: str) -> list[str]:
    """What one wildcard certificate covers: every direct sub-name and the apex."""
    return [f"*.{domain_name}", domain_name]


async def _record(
    actor: Principal, request_id: str, event: str, row: WildcardCertificate, **payload: object
) -> None:
    await audit.record(
        actor=actor,
        event_type=f"wildcard-certificate.{event}",
        aggregate_type="wildcard-certificate",
        aggregate_id=row.id,
        payload={"domainName": row.domain_name, **payload},
        request_id=request_id,
    )


async def _open_attempt(row: WildcardCertificate, reason: str) -> str:
    """The open (requested) attempt, or a new one; the row becomes due now."""
    now = datetime.now(UTC)
    open_ = (
        await WildcardCertificateAttempt.filter(certificate_id=row.id, status="requested")
        .order_by("-id")
        .first()
    )
    if open_ is None:
        open_ = await WildcardCertificateAttempt.create(
            id=new_id("wca"),
            certificate_id=row.id,
            status="requested",
            reason=reason,
            provider_key=PROVIDER_KEY,
            challenge_type=CHALLENGE_TYPE,
            requested_at=now,
        )
    await WildcardCertificate.filter(id=row.id).update(next_attempt_at=now)
    return open_.id


async def request(
    actor: Principal, request_id: str, domain_name: str, dns_provider_id: str, directory: str
) -> tuple[WildcardCertificate, str]:
    """Create the certificate for ``*.domain_name`` + ``domain_name`` and its first attempt."""
    require_organization_wide(actor)
    provider = await get_provider(actor, dns_provider_id)
    name = normalize_domain(domain_name)
    if name != provider.zone and not name.endswith("." + provider.zone):
        raise InvalidRequest(
            f"{name} is not inside the provider's zone {provider.zone}: its _acme-challenge "
            "record could not be published there",
            details={"field": "domainName", "zone": provider.zone},
        )
    async with in_transaction():
        if await WildcardCertificate.exists(
            organization_id=actor.organization_id, domain_name=name
        ):
            raise Conflict(
                f"a wildcard certificate for {name} exists: retry or delete it",
                details={"domainName": name},
            )
        row = await WildcardCertificate.create(
            id=new_id("wcr"),
            organization_id=actor.organization_id,
            dns_provider_id=provider.id,
            domain_name=name,
            status="pending",
            acme_directory=directory,
            subject_alternative_names=names_of(name),
            created_at=datetime.now(UTC),
        )
        attempt_id = await _open_attempt(row, "issue")
        await _record(actor, request_id, "issue-requested", row, attemptId=attempt_id)
    return row, attempt_id


async def get_wildcard(actor: Principal, certificate_id: str) -> WildcardCertificate:
    """The caller's organization's wildcard certificate, or 404."""
    return await visible_or_404(
        WildcardCertificate,
        "wildcard certificate",
        certificate_id,
        lambda _row: not narrowed(actor),
        organization_id=actor.organization_id,
    )


async def listed(actor: Principal) -> list[WildcardCertificate]:
    """The organization's wildcard certificates, oldest first."""
    if narrowed(actor):
        return []
    return await WildcardCertificate.filter(organization_id=actor.organization_id).order_by("id")


async def attempts_of(ids: list[str]) -> dict[str, list[WildcardCertificateAttempt]]:
    """Each certificate's attempts, oldest first (the last is the latest)."""
    found: dict[str, list[WildcardCertificateAttempt]] = {i: [] for i in ids}
    if ids:
        for row in await WildcardCertificateAttempt.filter(certificate_id__in=ids).order_by("id"):
            found[row.certificate_id].append(row)  # type: ignore[attr-defined]
    return found


async def retry(actor: Principal, request_id: str, certificate_id: str) -> tuple[str, str]:
    """Order again now: after a failure (retriable or fixed since), or to renew early."""
    row = await get_wildcard(actor, certificate_id)
    async with in_transaction():
        reason = "renew" if row.fingerprint else "retry"
        attempt_id = await _open_attempt(row, reason)
        await _record(actor, request_id, f"{reason}-requested", row, attemptId=attempt_id)
    return row.id, attempt_id


async def delete(actor: Principal, request_id: str, certificate_id: str, confirmed: str) -> str:
    """Delete it (agents stop serving it with the next load); returns its organization."""
    row = await get_wildcard(actor, certificate_id)
    if confirmed != row.id:
        raise InvalidRequest(
            "confirmation.certificateId must repeat the id being deleted",
            details={"certificateId": row.id},
        )
    async with in_transaction():
        _ = await WildcardCertificate.filter(id=row.id).delete()
        await _record(actor, request_id, "deleted", row, fingerprint=row.fingerprint)
    return row.organization_id
