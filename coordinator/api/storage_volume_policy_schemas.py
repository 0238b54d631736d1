"""Request and response models of the storage-volume backup-policy routes (a Berth extension
shaped like the reference's dependency-resource backup policies)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from coordinator.api.dependency_backup_schemas import (
    KeepCount,
    PolicyTargetId,
    RetentionDays,
    ScheduleIntervalHours,
    VerifyAfterBackup,
)
from coordinator.api.schemas import ApiRequest
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.wire import WireModel


class ConfigureVolumeBackupPolicyRequest(ApiRequest):
    """``POST /storage-volumes/backup-policies`` (one policy per named volume; again
    replaces). ``stopResource`` stops the containers using the volume for each scheduled copy."""

    storage_volume_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
    retention_days: RetentionDays
    schedule_interval_hours: ScheduleIntervalHours
    keep_count: KeepCount = None
    retry_on_failure: bool = True
    enabled: bool = True
    stop_resource: bool = False
    backup_target_id: PolicyTargetId = None
    verify_after_backup: VerifyAfterBackup = False


class ListVolumeBackupPoliciesQuery(ApiRequest):
    """Filters of ``GET /storage-volumes/backup-policies``."""

    storage_volume_id: str | None = Field(
        default=None, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN
    )
    enabled_only: bool = False
    due_at: datetime | None = None


class VolumeBackupPolicyItem(WireModel):
    """``storage-volume-backup-policies.policy/v1`` (Berth)."""

    schema_version: Literal["storage-volume-backup-policies.policy/v1"] = (
        "storage-volume-backup-policies.policy/v1"
    )
    id: str
    version: str
    storage_volume_id: str
    project_id: str
    environment_id: str
    retention_days: int
    schedule_interval_hours: int
    retry_on_failure: bool
    enabled: bool
    stop_resource: bool
    last_run_at: datetime | None
    next_run_at: datetime | None
    updated_at: datetime
    keep_count: int | None
    last_backup_id: str | None
    backup_target_id: str | None
    verify_after_backup: bool


class VolumeBackupPolicyList(WireModel):
    """``storage-volume-backup-policies.list/v1`` (Berth)."""

    schema_version: Literal["storage-volume-backup-policies.list/v1"] = (
        "storage-volume-backup-policies.list/v1"
    )
    items: list[VolumeBackupPolicyItem]


class VolumeBackupPolicyShow(WireModel):
    """``storage-volume-backup-policies.show/v1`` (Berth)."""

    schema_version: Literal["storage-volume-backup-policies.show/v1"] = (
        "storage-volume-backup-policies.show/v1"
    )
    policy: VolumeBackupPolicyItem
