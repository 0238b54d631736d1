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


class EdgeProxyState(Model):
    """A server's edge proxy settings (set through the API, pushed to its agent on every
    connect) and the outcome of the latest push or bootstrap."""

    server_id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40)
    proxy_kind = fields.CharField(max_length=16, default="caddy")
    listen = fields.CharField(max_length=64, null=True)
    tls_listen = fields.CharField(max_length=64, null=True)
    http3 = fields.BooleanField(default=False)
    acme_email = fields.CharField(max_length=254, null=True)
    # pending (not applied yet), ready, failed
    status = fields.CharField(max_length=16, default="pending")
    last_attempt_id = fields.CharField(max_length=40, null=True)
    last_attempt_at = fields.DatetimeField(null=True)
    last_succeeded_at = fields.DatetimeField(null=True)
    last_error_code = fields.CharField(max_length=64, null=True)
    last_error_message = fields.CharField(max_length=1000, null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "edge_proxy_states"
