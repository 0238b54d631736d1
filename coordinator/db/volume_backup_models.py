"""Tortoise models for storage-volume backups (a Berth extension of issue 16)."""

from tortoise import fields
from tortoise.models import Model


class StorageVolumeBackup(Model):
    """One backup of a Docker named volume: a tar archive encrypted on the coordinator.

    ``status`` follows dependency backups: ``pending`` (being written), ``ready`` (every byte
    written, checksummed and closed) or ``failed``; the latest restore is kept on the row.
    """

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    project_id = fields.CharField(max_length=40)
    environment_id = fields.CharField(max_length=40)
    storage_volume_id = fields.CharField(max_length=40, db_index=True)
    server_id = fields.CharField(max_length=40)
    target = fields.CharField(max_length=24, default="coordinator")
    backup_target_id = fields.CharField(max_length=40, null=True)
    # The containers using the volume were stopped for the copy and started again after it.
    stop_resource = fields.BooleanField(default=False)
    status = fields.CharField(max_length=16, default="pending")
    attempt_id = fields.CharField(max_length=40)
    requested_at = fields.DatetimeField()
    artifact_handle = fields.CharField(max_length=300, null=True)
    size_bytes = fields.BigIntField(null=True)
    plain_bytes = fields.BigIntField(null=True)
    sha256 = fields.CharField(max_length=64, null=True)
    completed_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)
    failure_code = fields.CharField(max_length=64, null=True)
    failure_message = fields.CharField(max_length=2000, null=True)
    restore_attempt_id = fields.CharField(max_length=40, null=True)
    restore_target_volume_id = fields.CharField(max_length=40, null=True)
    restore_status = fields.CharField(max_length=16, null=True)
    restore_requested_at = fields.DatetimeField(null=True)
    restore_completed_at = fields.DatetimeField(null=True)
    restore_failed_at = fields.DatetimeField(null=True)
    restore_failure_code = fields.CharField(max_length=64, null=True)
    restore_failure_message = fields.CharField(max_length=2000, null=True)
    created_at = fields.DatetimeField()
    # What the archive held, counted by the agent as it streamed (absent from older agents).
    manifest_entries = fields.BigIntField(null=True)
    manifest_files = fields.BigIntField(null=True)
    manifest_file_bytes = fields.BigIntField(null=True)
    manifest_paths_sha256 = fields.CharField(max_length=64, null=True)
    # The latest verification: restored into a throwaway volume, counted, compared.
    verification_status = fields.CharField(max_length=16, null=True)
    verification_requested_at = fields.DatetimeField(null=True)
    verified_at = fields.DatetimeField(null=True)
    verification_files = fields.BigIntField(null=True)
    verification_file_bytes = fields.BigIntField(null=True)
    verification_message = fields.CharField(max_length=2000, null=True)

    class Meta:
        table = "storage_volume_backups"
