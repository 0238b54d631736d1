"""Storage-volume backup routes: parse, authorize, call ``coordinator.backups``, shape."""

from datetime import UTC, datetime
from typing import Final

from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.api.schemas import IdResponse, NoQuery
from coordinator.api.storage_volume_backup_schemas import (
    CreateVolumeBackupRequest,
    ListBackupsQuery,
    RestoreVolumeBackupRequest,
    VerifyVolumeBackupRequest,
    VolumeBackupItem,
    VolumeBackupList,
    VolumeBackupManifest,
    VolumeBackupShow,
    VolumeBackupVerification,
    VolumeRestoreAttempt,
)
from coordinator.backups import VOLUME_RUNNER_KEY, volume_service, volume_verify
from coordinator.backups.volume_runner import VolumeBackupRunner
from coordinator.db.volume_backup_models import StorageVolumeBackup
from shared.errors import InvalidRequest

TAG: Final = "storage-volumes"
READ: Final = "storage-volumes:read"
WRITE: Final = "storage-volumes:write"


def _runner(call: Call) -> VolumeBackupRunner:
    return call.request.app[VOLUME_RUNNER_KEY]


def item_of(row: StorageVolumeBackup) -> VolumeBackupItem:
    """The API item of a stored volume backup."""
    restore = None
    if row.restore_attempt_id is not None:
        restore = VolumeRestoreAttempt(
            attempt_id=row.restore_attempt_id,
            status=row.restore_status,  # type: ignore[arg-type]
            requested_at=row.restore_requested_at,
            completed_at=row.restore_completed_at,
            failed_at=row.restore_failed_at,
            failure_code=row.restore_failure_code,
            failure_message=row.restore_failure_message,
            target_storage_volume_id=row.restore_target_volume_id,
        )
    return VolumeBackupItem(
        id=row.id,
        storage_volume_id=row.storage_volume_id,
        project_id=row.project_id,
        environment_id=row.environment_id,
        server_id=row.server_id,
        status=row.status,  # type: ignore[arg-type]
        attempt_id=row.attempt_id,
        requested_at=row.requested_at,
        provider_artifact_handle=row.artifact_handle,
        completed_at=row.completed_at,
        failed_at=row.failed_at,
        failure_code=row.failure_code,
        failure_message=row.failure_message,
        latest_restore_attempt=restore,
        created_at=row.created_at,
        target=row.target,  # type: ignore[arg-type]
        backup_target_id=row.backup_target_id,
        stop_resource=row.stop_resource,
        format="tar",
        size_bytes=row.size_bytes,
        archive_bytes=row.plain_bytes,
        sha256=row.sha256,
        encryption="aes-256-gcm",
        manifest=_manifest_of(row),
        verification=_verification_of(row),
    )


def _manifest_of(row: StorageVolumeBackup) -> VolumeBackupManifest | None:
    manifest = volume_verify.recorded(row)
    if manifest is None:
        return None
    return VolumeBackupManifest(
        entries=manifest.entries,
        files=manifest.files,
        file_bytes=manifest.file_bytes,
        paths_sha256=manifest.paths_sha256,
    )


def _verification_of(row: StorageVolumeBackup) -> VolumeBackupVerification | None:
    if row.verification_status is None:
        return None
    return VolumeBackupVerification(
        status=row.verification_status,  # type: ignore[arg-type]
        requested_at=row.verification_requested_at,
        checked_at=row.verified_at,
        files=row.verification_files,
        file_bytes=row.verification_file_bytes,
        message=row.verification_message,
    )


@route(
    "POST",
    "/storage-volumes/{storageVolumeId}/backups",
    summary="Back up a named volume (a tar archive, encrypted, on the coordinator)",
    tag=TAG,
    permission=WRITE,
    body=CreateVolumeBackupRequest,
    response=IdResponse,
    status=202,
    events=("storage-volume.backup-requested",),
)
async def create_volume_backup(call: Call) -> IdResponse:
    """Answers at once with the backup's id; the backup is ``pending`` until it is ready."""
    body = call.body(CreateVolumeBackupRequest)
    return IdResponse(
        id=await volume_service.create(
            call.actor,
            call.request_id,
            call.path["storageVolumeId"],
            _runner(call),
            stop_resource=body.stop_resource,
            backup_target_id=body.backup_target_id,
        )
    )


@route(
    "GET",
    "/storage-volumes/{storageVolumeId}/backups",
    summary="List a storage volume's backups",
    tag=TAG,
    permission=READ,
    query=ListBackupsQuery,
    response=VolumeBackupList,
)
async def list_volume_backups(call: Call) -> VolumeBackupList:
    """Oldest first, at most 500."""
    query = call.query(ListBackupsQuery)
    rows = await volume_service.listed(call.actor, call.path["storageVolumeId"], query.status)
    return VolumeBackupList(items=[item_of(row) for row in rows], generated_at=datetime.now(UTC))


@route(
    "GET",
    "/storage-volumes/backups/{backupId}",
    summary="Show one volume backup with its latest restore attempt",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=VolumeBackupShow,
)
async def show_volume_backup(call: Call) -> VolumeBackupShow:
    """One volume backup of the caller's scope."""
    row = await volume_service.get(call.actor, call.path["backupId"])
    return VolumeBackupShow(backup=item_of(row), generated_at=datetime.now(UTC))


@route(
    "POST",
    "/storage-volumes/backups/{backupId}/restore",
    summary="Restore a ready volume backup (acknowledgeDataOverwrite), into its volume or another",
    tag=TAG,
    permission=WRITE,
    body=RestoreVolumeBackupRequest,
    response=IdResponse,
    status=202,
    errors=AGENT_ERRORS,
    events=("storage-volume.restore-requested",),
)
async def restore_volume_backup(call: Call) -> IdResponse:
    """Runs in the background; the outcome is the backup's latestRestoreAttempt. Containers
    using the volume are stopped for the restore and started again after it."""
    body = call.body(RestoreVolumeBackupRequest)
    if not body.acknowledge_data_overwrite:
        raise InvalidRequest(
            "a restore replaces the volume's files: set acknowledgeDataOverwrite to true",
            details={"field": "acknowledgeDataOverwrite"},
        )
    return IdResponse(
        id=await volume_service.restore(
            call.actor,
            call.request_id,
            call.path["backupId"],
            body.target_storage_volume_id,
            _runner(call),
        )
    )


@route(
    "POST",
    "/storage-volumes/backups/{backupId}/verify",
    summary="Verify a volume backup: restore it into a throwaway volume and count its files",
    tag=TAG,
    permission=WRITE,
    body=VerifyVolumeBackupRequest,
    response=IdResponse,
    status=202,
    errors=AGENT_ERRORS,
    events=(volume_verify.EVENT,),
)
async def verify_volume_backup(call: Call) -> IdResponse:
    """Runs in the background; the result is the backup's ``verification`` (passed when the
    restored volume's entries, files, bytes and paths match the backup's manifest)."""
    call.body(VerifyVolumeBackupRequest)
    return IdResponse(
        id=await volume_verify.request(
            call.actor, call.request_id, call.path["backupId"], _runner(call)
        )
    )
