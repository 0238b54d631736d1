"""Imported certificates: validate and store one (key encrypted), and the set an edge serves."""

from datetime import UTC, datetime
from typing import Any, Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.certificates.pem_checks import check
from coordinator.db.certificate_models import Certificate, CertificateAttempt
from coordinator.dns01.serving import served_wildcards
from coordinator.domains import bindings
from coordinator.ids import new_id
from coordinator.secrets import Keyring
from shared.errors import Conflict, InvalidRequest
from shared.messages.certificates import ImportedCertificate

PROVIDER_KEY: Final = "imported"


def _key_binding(certificate_id: str) -> str:
    # The ciphertext is bound to its row: a key copied onto another row does not decrypt.
    return f"certificate:{certificate_id}"


async def import_certificate(
    actor: Principal,
    request_id: str,
    keyring: Keyring,
    *,
    domain_binding_id: str,
    certificate_chain: str,
    private_key: str,
) -> tuple[str, str, str | None]:
    """Check and store (or replace) the binding's imported certificate.

    Returns (certificate id, attempt id, the binding's server id).
    """
    binding = await bindings.get_binding(actor, domain_binding_id)
    if binding.tls_mode == "disabled":
        raise Conflict(
            f"{binding.domain_name} has tlsMode disabled: set it to imported or auto first",
            details={"domainBindingId": binding.id, "tlsMode": binding.tls_mode},
        )
    if binding.server_id is None:
        raise InvalidRequest(
            "the binding has no server yet: deploy the resource or bind with a serverId first",
            details={"domainBindingId": binding.id},
        )
    facts = check(certificate_chain, private_key, binding.domain_name)
    now = datetime.now(UTC)
    async with in_transaction():
        row = await Certificate.get_or_none(domain_binding_id=binding.id, source="imported")
        certificate_id = row.id if row is not None else new_id("crt")
        values: dict[str, Any] = {
            "server_id": binding.server_id,
            "domain_name": binding.domain_name,
            "status": "active",
            "provider_key": PROVIDER_KEY,
            "challenge_type": None,
            "issuer": facts.issuer,
            "subject_alternative_names": list(facts.subject_alternative_names),
            "not_before": facts.not_before,
            "not_after": facts.not_after,
            "issued_at": facts.not_before,
            "fingerprint": facts.fingerprint,
            "key_algorithm": facts.key_algorithm,
            "certificate_chain": certificate_chain,
            "private_key_encrypted": keyring.encrypt(private_key, _key_binding(certificate_id)),
        }
        if row is None:
            _ = await Certificate.create(
                id=certificate_id,
                domain_binding_id=binding.id,
                source="imported",
                created_at=now,
                **values,
            )
        else:
            await Certificate.filter(id=certificate_id).update(**values)
        attempt_id = new_id("cat")
        _ = await CertificateAttempt.create(
            id=attempt_id,
            certificate_id=certificate_id,
            status="imported",
            reason="import",
            provider_key=PROVIDER_KEY,
            requested_at=now,
            issued_at=facts.not_before,
            expires_at=facts.not_after,
            fingerprint=facts.fingerprint,
        )
        await audit.record(
            actor=actor,
            event_type="certificate.imported",
            aggregate_type="certificate",
            aggregate_id=certificate_id,
            payload={
                "domainBindingId": binding.id,
                "domainName": binding.domain_name,
                "fingerprint": facts.fingerprint,
                "notAfter": facts.not_after.isoformat(),
            },
            request_id=request_id,
        )
    return certificate_id, attempt_id, binding.server_id


async def served_set(server_id: str, keyring: Keyring) -> list[ImportedCertificate]:
    """The active imported certificates of the bindings on ``server_id``, keys decrypted, and
    the organization's wildcard certificates (issued over DNS-01, served the same way)."""
    rows = await Certificate.filter(
        server_id=server_id, source="imported", status="active"
    ).order_by("id")
    imported = [
        ImportedCertificate(
            certificate_id=row.id,
            domain_name=row.domain_name,
            certificate_chain=row.certificate_chain or "",
            private_key=keyring.decrypt(row.private_key_encrypted or "", _key_binding(row.id)),
        )
        for row in rows
    ]
    return imported + await served_wildcards(server_id, keyring)
