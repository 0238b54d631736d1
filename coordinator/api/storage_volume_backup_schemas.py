"""Request and response models of the storage-volume backup routes (a Berth extension shaped
like the reference's dependency-resource backups)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from coordinator.api.dependency_backup_schemas import (
    BackupStatus,
    LatestRestoreAttempt,
    ListBackupsQuery,
)
from coordinator.api.schemas import ApiRequest
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.wire import WireModel

__all__ = [
    "CreateVolumeBackupRequest",
    "ListBackupsQuery",
    "RestoreVolumeBackupRequest",
    "VerifyVolumeBackupRequest",
    "VolumeBackupItem",
    "VolumeBackupList",
    "VolumeBackupManifest",
    "VolumeBackupShow",
    "VolumeBackupVerification",
]


class CreateVolumeBackupRequest(ApiRequest):
    """``POST /storage-volumes/{id}/backups``. ``stopResource`` stops the containers using the
    volume for the copy and starts them again after it (brief downtime, a copy no writer
    changes meanwhile)."""

    stop_resource: bool = False
    backup_target_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=ID_PATTERN,
        description="keep the artifact in this backup target (default: the coordinator)",
    )


class RestoreVolumeBackupRequest(ApiRequest):
    """``POST /storage-volumes/backups/{backupId}/restore``.

    ``acknowledgeDataOverwrite`` must be true: the volume's files are replaced by the
    backup's. ``targetStorageVolumeId`` restores into another named volume on the same server
    (or one not placed yet) instead.
    """

    acknowledge_data_overwrite: bool = False
    target_storage_volume_id: str | None = Field(
        default=None, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN
    )


class VerifyVolumeBackupRequest(ApiRequest):
    """``POST /storage-volumes/backups/{backupId}/verify`` takes no fields."""


class VolumeBackupManifest(WireModel):
    """What the archive held when the backup was taken, counted by the agent as it streamed:
    every entry, the regular files and their bytes, and the SHA-256 of the entries' types,
    sizes and paths in archive order."""

    entries: int
    files: int
    file_bytes: int
    paths_sha256: str


class VolumeBackupVerification(WireModel):
    """The latest verification (Berth): the backup restored into a throwaway volume on its
    server, counted there and compared with the manifest (the dependency backups' names)."""

    status: Literal["pending", "passed", "failed"]
    requested_at: datetime | None
    checked_at: datetime | None
    files: int | None
    file_bytes: int | None
    message: str | None


class VolumeRestoreAttempt(LatestRestoreAttempt):
    """The latest restore, with the volume it wrote."""

    target_storage_volume_id: str | None


class VolumeBackupItem(WireModel):
    """One volume backup: a tar archive of the volume, encrypted on the coordinator."""

    id: str
    storage_volume_id: str
    project_id: str
    environment_id: str
    server_id: str
    status: BackupStatus
    attempt_id: str
    requested_at: datetime
    provider_artifact_handle: str | None
    completed_at: datetime | None
    failed_at: datetime | None
    failure_code: str | None
    failure_message: str | None
    latest_restore_attempt: VolumeRestoreAttempt | None
    created_at: datetime
    target: Literal["coordinator", "s3", "server-directory"]
    backup_target_id: str | None = None
    stop_resource: bool
    format: Literal["tar"]
    size_bytes: int | None
    archive_bytes: int | None
    sha256: str | None
    encryption: Literal["aes-256-gcm"]
    manifest: VolumeBackupManifest | None = None
    verification: VolumeBackupVerification | None = None


class VolumeBackupList(WireModel):
    """``storage-volumes.backups.list/v1`` (Berth)."""

    schema_version: Literal["storage-volumes.backups.list/v1"] = "storage-volumes.backups.list/v1"
    items: list[VolumeBackupItem]
    generated_at: datetime


class VolumeBackupShow(WireModel):
    """``storage-volumes.backups.show/v1`` (Berth)."""

    schema_version: Literal["storage-volumes.backups.show/v1"] = "storage-volumes.backups.show/v1"
    backup: VolumeBackupItem
    generated_at: datetime
