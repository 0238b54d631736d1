"""Request and response models of the storage-volume routes (Appaloft shapes, seed 2.24)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from coordinator.api.schemas import ApiRequest
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.wire import WireModel

VolumeKind = Literal["named-volume", "bind-mount"]
MountMode = Literal["read-write", "read-only"]

_Id = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
_OptionalId = Field(default=None, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
_Name = Field(min_length=1, max_length=100)


class CreateStorageVolumeRequest(ApiRequest):
    """``POST /storage-volumes``: the reference's body plus the bind source and placement."""

    project_id: str = _Id
    environment_id: str = _Id
    name: str = _Name
    kind: VolumeKind
    source_path: str | None = Field(
        default=None, min_length=1, max_length=1000, description="host directory of a bind mount"
    )
    server_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=ID_PATTERN,
        description="the server the volume lives on; null: the first deployment places it",
    )
    description: str | None = Field(default=None, max_length=2000)


class ListStorageVolumesQuery(ApiRequest):
    """Query of ``GET /storage-volumes`` and its count."""

    project_id: str | None = _OptionalId
    environment_id: str | None = _OptionalId


class RenameStorageVolumeRequest(ApiRequest):
    """``POST /storage-volumes/{id}/rename``."""

    name: str = _Name


class AttachStorageRequest(ApiRequest):
    """``POST /resources/{id}/storage-attachments``."""

    storage_volume_id: str = _Id
    destination_path: str = Field(min_length=1, max_length=1000)
    mount_mode: MountMode = "read-write"


class RuntimeCleanupRequest(ApiRequest):
    """``POST /storage-volumes/{id}/runtime-cleanup``: a dry run unless ``dryRun`` is false."""

    server_id: str | None = _OptionalId
    before: datetime | None = None
    dry_run: bool = True


class BackupRelationship(WireModel):
    """Whether backups require keeping the volume (backups are not built yet: never)."""

    retention_required: bool
    reason: str | None


class VolumeAttachment(WireModel):
    """A safe summary of one attachment."""

    attachment_id: str
    resource_id: str
    resource_name: str
    resource_slug: str
    destination_path: str
    mount_mode: MountMode
    attached_at: datetime


class StorageVolumeItem(WireModel):
    """One storage volume with its attachments."""

    id: str
    project_id: str
    environment_id: str
    server_id: str | None = Field(description="where it lives; null until first deployed")
    name: str
    slug: str
    kind: VolumeKind
    source_path: str | None = Field(
        description="a bind mount's host directory, or a named volume's Docker volume name"
    )
    description: str | None
    lifecycle_status: Literal["active"]
    backup_relationship: BackupRelationship
    attachment_count: int
    attachments: list[VolumeAttachment]
    created_at: datetime
    deleted_at: datetime | None


class StorageVolumeList(WireModel):
    """``storage-volumes.list/v1``."""

    schema_version: Literal["storage-volumes.list/v1"] = "storage-volumes.list/v1"
    items: list[StorageVolumeItem]
    generated_at: datetime


class StorageVolumeShow(WireModel):
    """``storage-volumes.show/v1``."""

    schema_version: Literal["storage-volumes.show/v1"] = "storage-volumes.show/v1"
    storage_volume: StorageVolumeItem
    generated_at: datetime


class VolumeDeleteBlocker(WireModel):
    """Something that keeps a volume from being deleted."""

    kind: Literal["active-attachment"]
    message: str
    related_entity_type: Literal["resource"]
    related_entity_id: str


class StorageVolumeDeleteCheck(WireModel):
    """``storage-volumes.delete-check/v1`` (Berth's: deleting is blocked while attached)."""

    schema_version: Literal["storage-volumes.delete-check/v1"] = "storage-volumes.delete-check/v1"
    storage_volume_id: str
    safe_to_delete: bool
    blockers: list[VolumeDeleteBlocker]
    generated_at: datetime


class CleanupVolume(WireModel):
    """The volume a cleanup is about."""

    id: str
    name: str
    kind: VolumeKind


class CleanupServer(WireModel):
    """The server a cleanup ran on."""

    id: str
    name: str
    host: str | None
    port: int | None
    provider_key: str
    target_kind: str


class CleanupSummary(WireModel):
    """Counts of the candidates by what happened to them."""

    inspected_count: int
    matched_count: int
    cleaned_count: int
    skipped_count: int
    blocked_count: int


class CleanupCandidate(WireModel):
    """One Docker volume of the storage volume on the server."""

    id: str
    kind: Literal["named-volume"]
    target: str
    updated_at: datetime | None
    action: Literal["matched", "removed", "skipped", "blocked"]
    blocked_reason: str | None


class CleanupWarning(WireModel):
    """Something the caller should know."""

    code: str
    message: str
    target: str | None


class RuntimeCleanupResponse(WireModel):
    """``storage-volumes.cleanup-runtime/v1``."""

    schema_version: Literal["storage-volumes.cleanup-runtime/v1"] = (
        "storage-volumes.cleanup-runtime/v1"
    )
    storage_volume: CleanupVolume
    server: CleanupServer
    before: datetime | None
    dry_run: bool
    cleaned_at: datetime | None
    summary: CleanupSummary
    candidates: list[CleanupCandidate]
    warnings: list[CleanupWarning]
