"""Request and response models of the dependency-resource backup routes (Appaloft shapes)."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from coordinator.api.dependency_schemas import DependencyKindName
from coordinator.api.schemas import ApiRequest
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.wire import WireModel

BackupStatus = Literal["pending", "ready", "failed"]
RestoreStatus = Literal["pending", "ready", "failed"]

# The settings of every backup policy's configure body (database and volume policies alike).
RetentionDays = Annotated[int, Field(ge=1, le=3650)]
ScheduleIntervalHours = Annotated[int, Field(ge=1, le=24 * 365)]
KeepCount = Annotated[int | None, Field(ge=1, le=1000)]
PolicyTargetId = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=ID_PATTERN,
        description="scheduled backups go to this backup target (default: the coordinator)",
    ),
]
VerifyAfterBackup = Annotated[
    bool,
    Field(
        description="Berth: verify each backup the policy takes once it is ready (the on-demand "
        "verification, run by the policy)",
    ),
]


class CreateBackupRequest(ApiRequest):
    """``POST /dependency-resources/{id}/backups``: the reference's body is empty;
    ``backupTargetId`` (Berth) keeps the artifact in a backup target instead of the
    coordinator's storage."""

    backup_target_id: str | None = Field(
        default=None, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN
    )


class ListBackupsQuery(ApiRequest):
    """Filters of ``GET /dependency-resources/{id}/backups``."""

    status: BackupStatus | None = None


class RestoreBackupRequest(ApiRequest):
    """``POST /dependency-resources/backups/{backupId}/restore``.

    ``acknowledgeDataOverwrite`` must be true: the target database's tables are replaced.
    ``targetDependencyResourceId`` (Berth) restores into another database of the same kind
    instead, e.g. a freshly provisioned one (a clone).
    """

    acknowledge_data_overwrite: bool = False
    acknowledge_runtime_not_restarted: bool = False
    target_dependency_resource_id: str | None = Field(
        default=None, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN
    )


class LatestRestoreAttempt(WireModel):
    """The latest restore of a backup."""

    attempt_id: str
    status: RestoreStatus
    requested_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    failure_code: str | None
    failure_message: str | None


class BackupVerification(WireModel):
    """The latest verification (Berth): the backup restored into a throwaway database."""

    status: Literal["pending", "passed", "failed"]
    requested_at: datetime | None
    checked_at: datetime | None
    tables: int | None
    rows: int | None
    message: str | None


class BackupItem(WireModel):
    """One backup. ``providerArtifactHandle`` names where the artifact is, never a secret;
    ``sizeBytes`` is the stored (encrypted) size and ``sha256`` its checksum (Berth)."""

    id: str
    dependency_resource_id: str
    project_id: str
    environment_id: str
    dependency_kind: DependencyKindName
    provider_key: str
    status: BackupStatus
    attempt_id: str
    requested_at: datetime
    retention_status: Literal["retained"]
    provider_artifact_handle: str | None
    completed_at: datetime | None
    failed_at: datetime | None
    failure_code: str | None
    failure_message: str | None
    latest_restore_attempt: LatestRestoreAttempt | None
    created_at: datetime
    target: Literal["coordinator", "s3", "server-directory"]
    backup_target_id: str | None = None
    size_bytes: int | None
    sha256: str | None
    encryption: Literal["aes-256-gcm"]
    verification: BackupVerification | None


class BackupList(WireModel):
    """``dependency-resources.backups.list/v1``."""

    schema_version: Literal["dependency-resources.backups.list/v1"] = (
        "dependency-resources.backups.list/v1"
    )
    items: list[BackupItem]
    generated_at: datetime


class BackupShow(WireModel):
    """``dependency-resources.backups.show/v1``."""

    schema_version: Literal["dependency-resources.backups.show/v1"] = (
        "dependency-resources.backups.show/v1"
    )
    backup: BackupItem
    generated_at: datetime


class ConfigureBackupPolicyRequest(ApiRequest):
    """``POST /dependency-resources/backup-policies`` (one policy per database; again replaces)."""

    dependency_resource_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
    retention_days: RetentionDays
    schedule_interval_hours: ScheduleIntervalHours
    keep_count: KeepCount = None
    retry_on_failure: bool = True
    enabled: bool = True
    backup_target_id: PolicyTargetId = None
    verify_after_backup: VerifyAfterBackup = False


class ListBackupPoliciesQuery(ApiRequest):
    """Filters of ``GET /dependency-resources/backup-policies``."""

    dependency_resource_id: str | None = Field(
        default=None, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN
    )
    enabled_only: bool = False
    due_at: datetime | None = None


class BackupPolicyItem(WireModel):
    """``dependency-resource-backup-policies.policy/v1`` (``keepCount``: Berth)."""

    schema_version: Literal["dependency-resource-backup-policies.policy/v1"] = (
        "dependency-resource-backup-policies.policy/v1"
    )
    id: str
    version: str
    dependency_resource_id: str
    retention_days: int
    schedule_interval_hours: int
    provider_key: str
    retry_on_failure: bool
    enabled: bool
    last_run_at: datetime | None
    next_run_at: datetime | None
    updated_at: datetime
    keep_count: int | None
    last_backup_id: str | None
    backup_target_id: str | None = None
    verify_after_backup: bool = False


class BackupPolicyList(WireModel):
    """``dependency-resource-backup-policies.list/v1``."""

    schema_version: Literal["dependency-resource-backup-policies.list/v1"] = (
        "dependency-resource-backup-policies.list/v1"
    )
    items: list[BackupPolicyItem]


class BackupPolicyShow(WireModel):
    """``dependency-resource-backup-policies.show/v1``."""

    schema_version: Literal["dependency-resource-backup-policies.show/v1"] = (
        "dependency-resource-backup-policies.show/v1"
    )
    policy: BackupPolicyItem
