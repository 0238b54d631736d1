"""Tortoise models of DNS-01 issuance (issue 15 item 3): DNS providers and wildcard certificates."""

from tortoise import fields
from tortoise.models import Model


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


class WildcardCertificate(Model):
    """``*.{domain_name}`` and ``{domain_name}``, ordered by the coordinator over DNS-01.

    Served by every server of the organization like an imported certificate.
    """

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    dns_provider_id = fields.CharField(max_length=40, db_index=True)
    domain_name = fields.CharField(max_length=253)
    status = fields.CharField(max_length=16, default="pending")
    acme_directory = fields.CharField(max_length=500)
    issuer = fields.CharField(max_length=500, null=True)
    subject_alternative_names = fields.JSONField[list[str]](default=list)
    not_before = fields.DatetimeField(null=True)
    not_after = fields.DatetimeField(null=True)
    issued_at = fields.DatetimeField(null=True)
    fingerprint = fields.CharField(max_length=100, null=True)
    key_algorithm = fields.CharField(max_length=40, null=True)
    certificate_chain = fields.TextField(null=True)
    private_key_encrypted = fields.TextField(null=True)
    # The ACME account key (encrypted), reused so the CA sees one account per certificate.
    account_key_encrypted = fields.TextField(null=True)
    # When the renewal loop next orders it (None: not due, e.g. after a non-retriable failure).
    next_attempt_at = fields.DatetimeField(null=True, db_index=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "wildcard_certificates"
        unique_together = (("organization_id", "domain_name"),)


class WildcardCertificateAttempt(Model):
    """One order (issue, renew or retry) and how it ended, in the certificate attempt's terms."""

    id = fields.CharField(primary_key=True, max_length=40)
    certificate: fields.ForeignKeyRelation[WildcardCertificate] = fields.ForeignKeyField(
        "models.WildcardCertificate", related_name="attempts", on_delete=fields.CASCADE
    )
    status = fields.CharField(max_length=16)
    reason = fields.CharField(max_length=16, default="issue")
    provider_key = fields.CharField(max_length=500)
    challenge_type = fields.CharField(max_length=20, null=True)
    requested_at = fields.DatetimeField()
    issued_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)
    fingerprint = fields.CharField(max_length=100, null=True)
    error_code = fields.CharField(max_length=60, null=True)
    failure_phase = fields.CharField(max_length=16, null=True)
    failure_message = fields.TextField(null=True)
    failure_details = fields.JSONField[dict[str, object]](null=True)
    retriable = fields.BooleanField(null=True)
    retry_after = fields.DatetimeField(null=True)

    class Meta:
        table = "wildcard_certificate_attempts"
