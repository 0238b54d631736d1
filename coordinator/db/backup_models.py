"""Tortoise models for dependency-resource backups (artifacts and their latest restore)."""

from tortoise import fields
from tortoise.models import Model


class DependencyBackup(Model):
    """One backup of a dependency resource: an encrypted artifact in a target (issue 16).

    ``status`` is the reference's ``pending`` (being written), ``ready`` or ``failed``; an
    artifact is only ``ready`` once every byte was written, checksummed and closed.
    """

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    project_id = fields.CharField(max_length=40)
    environment_id = fields.CharField(max_length=40)
    dependency_resource_id = fields.CharField(max_length=40, db_index=True)
    server_id = fields.CharField(max_length=40)
    dependency_kind = fields.CharField(max_length=24)
    provider_key = fields.CharField(max_length=40)
    target = fields.CharField(max_length=24, default="coordinator")
    backup_target_id = fields.CharField(max_length=40, null=True)
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
    restore_status = fields.CharField(max_length=16, null=True)
    restore_requested_at = fields.DatetimeField(null=True)
    restore_completed_at = fields.DatetimeField(null=True)
    restore_failed_at = fields.DatetimeField(null=True)
    restore_failure_code = fields.CharField(max_length=64, null=True)
    restore_failure_message = fields.CharField(max_length=2000, null=True)
    verification_status = fields.CharField(max_length=16, null=True)
    verification_requested_at = fields.DatetimeField(null=True)
    verified_at = fields.DatetimeField(null=True)
    verification_tables = fields.IntField(null=True)
    verification_rows = fields.BigIntField(null=True)
    verification_message = fields.CharField(max_length=2000, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "dependency_backups"


class DependencyBackupPolicy(Model):
    """When to back up one dependency resource and how long to keep its backups (one policy per
    resource; configuring it again replaces it and bumps ``version``)."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    project_id = fields.CharField(max_length=40)
    environment_id = fields.CharField(max_length=40)
    dependency_resource_id = fields.CharField(max_length=40, unique=True)
    version = fields.IntField(default=1)
    provider_key = fields.CharField(max_length=40)
    schedule_interval_hours = fields.IntField()
    retention_days = fields.IntField()
    keep_count = fields.IntField(null=True)
    retry_on_failure = fields.BooleanField(default=True)
    enabled = fields.BooleanField(default=True)
    last_run_at = fields.DatetimeField(null=True)
    next_run_at = fields.DatetimeField(null=True, db_index=True)
    last_backup_id = fields.CharField(max_length=40, null=True)
    retried_backup_id = fields.CharField(max_length=40, null=True)
    backup_target_id = fields.CharField(max_length=40, null=True)
    updated_at = fields.DatetimeField()
    verify_after_backup = fields.BooleanField(default=False)

    class Meta:
        table = "dependency_backup_policies"
