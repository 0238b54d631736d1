"""Tortoise model of backup targets: where an organization's backup artifacts are kept."""

from tortoise import fields
from tortoise.models import Model


class BackupTarget(Model):
    """An S3-compatible bucket: endpoint, bucket, prefix, and a secret key sealed by the Keyring
    that database and volume backups may be written to instead of the coordinator's storage;
    or (kind ``server-directory``) a directory on one server, written through its agent (the
    S3 fields are empty then)."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    name = fields.CharField(max_length=100)
    kind = fields.CharField(max_length=24)
    endpoint_url = fields.CharField(max_length=500)
    region = fields.CharField(max_length=64)
    bucket = fields.CharField(max_length=63)
    prefix = fields.CharField(max_length=200, default="")
    access_key_id = fields.CharField(max_length=200)
    secret_access_key_encrypted = fields.TextField()
    created_at = fields.DatetimeField()
    server_id = fields.CharField(max_length=40, null=True)
    path = fields.CharField(max_length=500, null=True)

    class Meta:
        table = "backup_targets"
        unique_together = (("organization_id", "name"),)
