"""Tortoise model for storage-volume backup policies (a Berth extension of issue 16)."""

from tortoise import fields
from tortoise.models import Model


class StorageVolumeBackupPolicy(Model):
    """When to back up one named volume and how long to keep its backups (one policy per
    volume; configuring it again replaces it and bumps ``version``). The fields mirror
    ``DependencyBackupPolicy`` plus ``stop_resource``, the volume backup's own option."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    project_id = fields.CharField(max_length=40)
    environment_id = fields.CharField(max_length=40)
    storage_volume_id = fields.CharField(max_length=40, unique=True)
    version = fields.IntField(default=1)
    schedule_interval_hours = fields.IntField()
    retention_days = fields.IntField()
    keep_count = fields.IntField(null=True)
    retry_on_failure = fields.BooleanField(default=True)
    enabled = fields.BooleanField(default=True)
    stop_resource = fields.BooleanField(default=False)
    last_run_at = fields.DatetimeField(null=True)
    next_run_at = fields.DatetimeField(null=True, db_index=True)
    last_backup_id = fields.CharField(max_length=40, null=True)
    retried_backup_id = fields.CharField(max_length=40, null=True)
    backup_target_id = fields.CharField(max_length=40, null=True)
    updated_at = fields.DatetimeField()
    verify_after_backup = fields.BooleanField(default=False)

    class Meta:
        table = "storage_volume_backup_policies"
