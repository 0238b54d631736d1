"""Tortoise models of the edge: access-failure evidence kept for a short while."""

from tortoise import fields
from tortoise.models import Model


class AccessFailureEvidence(Model):
    """One request an agent's edge could not serve, as ``resource-access-failure/v1``.

    Kept until ``expires_at`` (short retention): the request id on the visitor's error page
    finds it. ``evidence`` is the agent's report (camelCase wire fields).
    """

    request_id = fields.CharField(primary_key=True, max_length=64)
    organization_id = fields.CharField(max_length=40)
    server_id = fields.CharField(max_length=40)
    resource_id = fields.CharField(max_length=64, null=True)
    hostname = fields.CharField(max_length=255)
    path = fields.CharField(max_length=2048)
    captured_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)
    evidence = fields.JSONField[dict[str, object]]()

    class Meta:
        table = "access_failure_evidence"
