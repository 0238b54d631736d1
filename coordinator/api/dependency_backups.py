"""Dependency-resource backup routes: parse, authorize, call ``coordinator.backups``, shape."""

from datetime import UTC, datetime
from typing import Final

from coordinator.api.dependency_backup_schemas import (
    BackupItem,
    BackupList,
    BackupShow,
    BackupVerification,
    CreateBackupRequest,
    LatestRestoreAttempt,
    ListBackupsQuery,
    RestoreBackupRequest,
)
from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.api.schemas import IdResponse, NoQuery
from coordinator.backups import RUNNER_KEY, service
from coordinator.backups.runner import BackupRunner
from coordinator.db.backup_models import DependencyBackup
from shared.errors import InvalidRequest

TAG: Final = "dependency-resources"
READ: Final = "dependency-resources:read"
WRITE: Final = "dependency-resources:write"


def _runner(call: Call) -> BackupRunner:
    return call.request.app[RUNNER_KEY]


def item_of(row: DependencyBackup) -> BackupItem:
    """The API item of a stored backup."""
    restore = None
    if row.restore_attempt_id is not None:
        restore = LatestRestoreAttempt(
            attempt_id=row.restore_attempt_id,
            status=row.restore_status,  # type: ignore[arg-type]
            requested_at=row.restore_requested_at,
            completed_at=row.restore_completed_at,
            failed_at=row.restore_failed_at,
            failure_code=row.restore_failure_code,
            failure_message=row.restore_failure_message,
        )
    verification = None
    if row.verification_status is not None:
        verification = BackupVerification(
            status=row.verification_status,  # type: ignore[arg-type]
            requested_at=row.verification_requested_at,
            checked_at=row.verified_at,
            tables=row.verification_tables,
            rows=row.verification_rows,
            message=row.verification_message,
        )
    return BackupItem(
        id=row.id,
        dependency_resource_id=row.dependency_resource_id,
        project_id=row.project_id,
        environment_id=row.environment_id,
        dependency_kind=row.dependency_kind,  # type: ignore[arg-type]
        provider_key=row.provider_key,
        status=row.status,  # type: ignore[arg-type]
        attempt_id=row.attempt_id,
        requested_at=row.requested_at,
        retention_status="retained",
        provider_artifact_handle=row.artifact_handle,
        completed_at=row.completed_at,
        failed_at=row.failed_at,
        failure_code=row.failure_code,
        failure_message=row.failure_message,
        latest_restore_attempt=restore,
        created_at=row.created_at,
        target=row.target,  # type: ignore[arg-type]
        backup_target_id=row.backup_target_id,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        encryption="aes-256-gcm",
        verification=verification,
    )


@route(
    "POST",
    "/dependency-resources/{dependencyResourceId}/backups",
    summary="Back up a dependency resource (pg_dump/mariadb-dump, encrypted, on the coordinator)",
    tag=TAG,
    permission=WRITE,
    body=CreateBackupRequest,
    response=IdResponse,
    status=202,
    events=("dependency-resource.backup-requested",),
)
async def create_backup(call: Call) -> IdResponse:
    """Answers at once with the backup's id; the backup is ``pending`` until it is ready."""
    body = call.body(CreateBackupRequest)
    return IdResponse(
        id=await service.create(
            call.actor,
            call.request_id,
            call.path["dependencyResourceId"],
            _runner(call),
            backup_target_id=body.backup_target_id,
        )
    )


@route(
    "GET",
    "/dependency-resources/{dependencyResourceId}/backups",
    summary="List a dependency resource's backups",
    tag=TAG,
    permission=READ,
    query=ListBackupsQuery,
    response=BackupList,
)
async def list_backups(call: Call) -> BackupList:
    """Oldest first, at most 500."""
    query = call.query(ListBackupsQuery)
    rows = await service.listed(call.actor, call.path["dependencyResourceId"], query.status)
    return BackupList(items=[item_of(row) for row in rows], generated_at=datetime.now(UTC))


@route(
    "GET",
    "/dependency-resources/backups/{backupId}",
    summary="Show one backup with its latest restore attempt",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=BackupShow,
)
async def show_backup(call: Call) -> BackupShow:
    """One backup of the caller's scope."""
    row = await service.get(call.actor, call.path["backupId"])
    return BackupShow(backup=item_of(row), generated_at=datetime.now(UTC))


@route(
    "POST",
    "/dependency-resources/backups/{backupId}/restore",
    summary="Restore a ready backup (acknowledgeDataOverwrite), into its database or a clone",
    tag=TAG,
    permission=WRITE,
    body=RestoreBackupRequest,
    response=IdResponse,
    status=202,
    errors=AGENT_ERRORS,
    events=("dependency-resource.restore-requested",),
)
async def restore_backup(call: Call) -> IdResponse:
    """The restore runs in the background; its outcome is the backup's latestRestoreAttempt."""
    body = call.body(RestoreBackupRequest)
    if not body.acknowledge_data_overwrite:
        raise InvalidRequest(
            "a restore replaces the database's data: set acknowledgeDataOverwrite to true",
            details={"field": "acknowledgeDataOverwrite"},
        )
    return IdResponse(
        id=await service.restore(
            call.actor,
            call.request_id,
            call.path["backupId"],
            body.target_dependency_resource_id,
            _runner(call),
        )
    )


@route(
    "POST",
    "/dependency-resources/backups/{backupId}/verify",
    summary="Verify a backup: restore it into a throwaway database and count tables and rows",
    tag=TAG,
    permission=WRITE,
    body=CreateBackupRequest,
    response=IdResponse,
    status=202,
    errors=AGENT_ERRORS,
    events=("dependency-resource.backup-verification-requested",),
)
async def verify_backup(call: Call) -> IdResponse:
    """Runs in the background; the result is the backup's ``verification``."""
    call.body(CreateBackupRequest)
    return IdResponse(
        id=await service.verify(call.actor, call.request_id, call.path["backupId"], _runner(call))
    )
