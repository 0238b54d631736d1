"""Tortoise models of certificates (issue 15): what the edge holds per domain binding."""

from tortoise import fields
from tortoise.models import Model

from coordinator.db.models import DomainBinding


class CertificateFacts(Model):
    """The columns every certificate row has, per domain binding or wildcard (dns01_models).

    Facts (issuer, SANs, dates, fingerprint, key algorithm) are what was read from the PEM
    itself; nothing here is guessed by the coordinator.
    """

    id = fields.CharField(primary_key=True, max_length=40)
    domain_name = fields.CharField(max_length=253)
    status = fields.CharField(max_length=16, default="pending")
    issuer = fields.CharField(max_length=500, null=True)
    subject_alternative_names = fields.JSONField[list[str]](default=list)
    not_before = fields.DatetimeField(null=True)
    not_after = fields.DatetimeField(null=True)
    issued_at = fields.DatetimeField(null=True)
    fingerprint = fields.CharField(max_length=100, null=True)
    key_algorithm = fields.CharField(max_length=40, null=True)
    # The PEM chain and the key encrypted by the Keyring: a binding's certificate holds them
    # only when imported (a managed one stays in the agent's Caddy), a wildcard always once issued.
    certificate_chain = fields.TextField(null=True)
    private_key_encrypted = fields.TextField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        abstract = True


class AttemptRecord(Model):
    """The columns of one order (issue, renew, retry or import) and how it ended; the concrete
    attempt models add the foreign key to their certificate."""

    id = fields.CharField(primary_key=True, max_length=40)
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
        abstract = True


class Certificate(CertificateFacts):
    """One certificate lifecycle of a domain binding: ``managed`` (ACME) or ``imported``.

    Its facts are what the agent read from the PEM its edge serves (the first line above is
    the table's description in the migrations: keep it).
    """

    domain_binding: fields.ForeignKeyRelation[DomainBinding] = fields.ForeignKeyField(
        "models.DomainBinding", related_name="certificates", on_delete=fields.CASCADE
    )
    server_id = fields.CharField(max_length=40, null=True)
    source = fields.CharField(max_length=16, default="managed")
    provider_key = fields.CharField(max_length=500)
    challenge_type = fields.CharField(max_length=20, null=True)

    class Meta:
        table = "certificates"
        unique_together = (("domain_binding", "source"),)


class CertificateAttempt(AttemptRecord):
    """One issuance (or renewal, or import) attempt and how it ended."""

    certificate: fields.ForeignKeyRelation[Certificate] = fields.ForeignKeyField(
        "models.Certificate", related_name="attempts", on_delete=fields.CASCADE
    )

    class Meta:
        table = "certificate_attempts"
