"""Certificates the caller may see (scoped through their domain bindings)."""

from coordinator.auth import Principal
from coordinator.db.certificate_models import Certificate, CertificateAttempt
from coordinator.domains import bindings
from shared.errors import NotFound


async def listed(
    actor: Principal, *, domain_binding_id: str | None, limit: int
) -> list[Certificate]:
    """Visible certificates, oldest first (one binding's when ``domain_binding_id`` is given)."""
    visible = bindings.visible(actor)
    if domain_binding_id is not None:
        visible = visible.filter(id=domain_binding_id)
    ids = await visible.values_list("id", flat=True)
    return await Certificate.filter(domain_binding_id__in=list(ids)).order_by("id").limit(limit)


async def get_certificate(actor: Principal, certificate_id: str) -> Certificate:
    """A certificate whose binding the caller may see, or ``NotFound`` (403 in a project the
    caller may only read)."""
    row = await Certificate.get_or_none(id=certificate_id)
    binding = None
    if row is not None:
        binding_id = row.domain_binding_id  # type: ignore[attr-defined]
        binding = await bindings.visible(actor).filter(id=binding_id).first()
    if row is None or binding is None:
        raise NotFound(f"certificate {certificate_id!r} not found")
    actor.require_grant(binding.project_id)
    return row


async def attempts_of(certificate_ids: list[str]) -> dict[str, list[CertificateAttempt]]:
    """Each certificate's attempts in the order Berth learned of them (the last is the latest)."""
    found: dict[str, list[CertificateAttempt]] = {c: [] for c in certificate_ids}
    if not certificate_ids:
        return found
    rows = await CertificateAttempt.filter(certificate_id__in=certificate_ids).order_by("id")
    for row in rows:
        found[row.certificate_id].append(row)  # type: ignore[attr-defined]
    return found


async def active_of_binding(binding_id: str) -> list[Certificate]:
    """The binding's certificates in use (deleting the binding drops them with it)."""
    return await Certificate.filter(domain_binding_id=binding_id, status="active").order_by("id")
