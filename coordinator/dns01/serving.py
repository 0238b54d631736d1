"""What an edge serves of the wildcard certificates: every active one of its organization."""

from coordinator.db import models
from coordinator.db.dns01_models import WildcardCertificate
from coordinator.secrets import Keyring
from shared.messages.certificates import ImportedCertificate


def key_binding(certificate_id: str) -> str:
    """The Keyring binding of a wildcard certificate's key (bound to its row)."""
    return f"wildcard-certificate:{certificate_id}"


def account_binding(certificate_id: str) -> str:
    """The Keyring binding of its ACME account key."""
    return f"wildcard-account:{certificate_id}"


async def covered_names(organization_id: str) -> list[str]:
    """The base names (``apps.example.com``) the organization's active wildcards cover."""
    rows = await WildcardCertificate.filter(
        organization_id=organization_id, status="active"
    ).values_list("domain_name", flat=True)
    return [str(r) for r in rows]


def covers(base_names: list[str], domain_name: str) -> bool:
    """Whether ``*.base`` or ``base`` matches ``domain_name`` (one label deep, as TLS matches)."""
    return any(
        domain_name == base
        or (domain_name.endswith("." + base) and "." not in domain_name[: -len(base) - 1])
        for base in base_names
    )


async def served_wildcards(server_id: str, keyring: Keyring) -> list[ImportedCertificate]:
    """The active wildcard certificates a server serves: all of its organization's."""
    server = await models.Server.get_or_none(id=server_id)
    if server is None:
        return []
    rows = await WildcardCertificate.filter(
        organization_id=server.organization_id,  # type: ignore[attr-defined]
        status="active",
    ).order_by("id")
    return [
        ImportedCertificate(
            certificate_id=row.id,
            domain_name=f"*.{row.domain_name}",
            certificate_chain=row.certificate_chain or "",
            private_key=keyring.decrypt(row.private_key_encrypted or "", key_binding(row.id)),
        )
        for row in rows
        if row.certificate_chain and row.private_key_encrypted
    ]
