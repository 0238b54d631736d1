"""Tortoise models of DNS-01 issuance (issue 15 item 3): DNS providers and wildcard certificates."""

from tortoise import fields
from tortoise.models import Model

from coordinator.db.certificate_models import AttemptRecord, CertificateFacts


class DnsProvider(Model):
    """An authoritative DNS server Berth may change over RFC 2136, with its TSIG key (sealed)."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    name = fields.CharField(max_length=100)
    kind = fields.CharField(max_length=16, default="rfc2136")
    server_host = fields.CharField(max_length=253)
    server_port = fields.IntField(default=53)
    zone = fields.CharField(max_length=253)
    tsig_key_name = fields.CharField(max_length=253)
    tsig_algorithm = fields.CharField(max_length=20)
    # Keyring ciphertext bound to this row; the API shows it masked.
    tsig_secret_encrypted = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "dns_providers"
        unique_together = (("organization_id", "name"),)


class WildcardCertificate(CertificateFacts):
    """``*.{domain_name}`` and ``{domain_name}``, ordered by the coordinator over DNS-01.

    Served by every server of the organization like an imported certificate.
    """

    organization_id = fields.CharField(max_length=40, db_index=True)
    dns_provider_id = fields.CharField(max_length=40, db_index=True)
    acme_directory = fields.CharField(max_length=500)
    # The ACME account key (encrypted), reused so the CA sees one account per certificate.
    account_key_encrypted = fields.TextField(null=True)
    # When the renewal loop next orders it (None: not due, e.g. after a non-retriable failure).
    next_attempt_at = fields.DatetimeField(null=True, db_index=True)

    class Meta:
        table = "wildcard_certificates"
        unique_together = (("organization_id", "domain_name"),)


class WildcardCertificateAttempt(AttemptRecord):
    """One order (issue, renew or retry) and how it ended, in the certificate attempt's terms."""

    certificate: fields.ForeignKeyRelation[WildcardCertificate] = fields.ForeignKeyField(
        "models.WildcardCertificate", related_name="attempts", on_delete=fields.CASCADE
    )

    class Meta:
        table = "wildcard_certificate_attempts"
