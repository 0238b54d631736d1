"""Tortoise model of default access domain policies (generated host names under a base domain)."""

from tortoise import fields
from tortoise.models import Model


class DefaultAccessPolicy(Model):
    """One organization's policy for the whole system (``scope_key`` ``system``) or for one of
    its servers (``server:<id>``); a server's own policy wins over the system one."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    # "system" or "server:<serverId>": one policy per scope, enforced by the database.
    scope_key = fields.CharField(max_length=60)
    scope_kind = fields.CharField(max_length=24)
    server_id = fields.CharField(max_length=40, null=True)
    # disabled (no generated names from this policy) or custom (names under base_domain)
    mode = fields.CharField(max_length=16)
    base_domain = fields.CharField(max_length=253, null=True)
    # on-demand (Caddy obtains a certificate on the first HTTPS request, after its ask check)
    # or disabled (plain HTTP)
    tls_mode = fields.CharField(max_length=16, default="on-demand")
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "default_access_policies"
        unique_together = (("organization_id", "scope_key"),)
