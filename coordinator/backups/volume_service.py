"""Storage-volume backup rules and persistence: take, list, show, restore (acknowledged), each
mutation audited. Backups are scoped like their volume: another tenant's id is a 404."""

from datetime import UTC, datetime
from typing import Final

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit, lookup
from coordinator.auth import Principal
from coordinator.backups import target_records
from coordinator.backups.volume_runner import VolumeBackupRunner
from coordinator.db.backup_target_models import BackupTarget
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.db.volume_models import StorageVolume
from coordinator.ids import new_id
from coordinator.volumes import store
from shared.errors import Conflict, InvalidRequest

# Only Docker named volumes: a bind mount's host directory is the operator's to back up.
BACKUP_KINDS: Final = ("named-volume",)


def visible(actor: Principal) -> QuerySet[StorageVolumeBackup]:
    """Volume backups of the caller's organisation within its project scope."""
    rows = StorageVolumeBackup.filter(organization_id=actor.organization_id)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(environment_id__in=list(actor.environment_ids))
    if actor.server_ids:
        rows = rows.filter(server_id__in=list(actor.server_ids))
    return rows


async def _record(
    actor: Principal | None,
    request_id: str | None,
    event: str,
    row: StorageVolumeBackup,
    **payload: object,
) -> None:
    await audit.record(
        actor=actor,
        organization_id=row.organization_id,
        event_type=event,
        aggregate_type="storage-volume",
        aggregate_id=row.storage_volume_id,
        payload={
            "projectId": row.project_id,
            "environmentId": row.environment_id,
            "backupId": row.id,
            **payload,
        },
        request_id=request_id,
    )


def check_kind(volume: StorageVolume, field: str) -> None:
    """Refuse (400 naming ``field``) a volume whose kind cannot be backed up."""
    if volume.kind not in BACKUP_KINDS:
        raise InvalidRequest(
            f"backups of a {volume.kind} are not supported; supported: {', '.join(BACKUP_KINDS)}",
            details={"field": field, "kind": volume.kind, "supported": list(BACKUP_KINDS)},
        )


def _check_placed(volume: StorageVolume) -> None:
    if volume.server_id is None:
        raise Conflict(
            "the volume is not placed on a server yet (no deployment used it): nothing to back up",
            details={"storageVolumeId": volume.id},
        )


async def create(
    actor: Principal,
    request_id: str,
    volume_id: str,
    runner: VolumeBackupRunner,
    *,
    stop_resource: bool = False,
    backup_target_id: str | None = None,
) -> str:
    """Record a pending backup of a placed named volume and take it in the background; with
    ``stop_resource`` the containers using the volume are stopped for the copy."""
    volume = await store.get_volume(actor, volume_id)
    check_kind(volume, "storageVolumeId")
    _check_placed(volume)
    target = None
    if backup_target_id is not None:
        target = await target_records.named(actor, backup_target_id, "backupTargetId")
    return await take(volume, target, runner, stop_resource, actor, request_id)


async def take(
    volume: StorageVolume,
    target: BackupTarget | None,
    runner: VolumeBackupRunner,
    stop_resource: bool,
    actor: Principal | None,
    request_id: str | None,
    **payload: object,
) -> str:
    """Record a pending backup of placed ``volume`` and take it in the background (``actor``
    None: a policy's run, audited as the system with ``payload`` such as its ``policyId``)."""
    _check_placed(volume)
    now = datetime.now(UTC)
    async with in_transaction():
        row = await StorageVolumeBackup.create(
            id=new_id("vbk"),
            organization_id=volume.organization_id,  # type: ignore[attr-defined]
            project_id=volume.project_id,
            environment_id=volume.environment_id,
            storage_volume_id=volume.id,
            server_id=volume.server_id,
            target=target.kind if target else "coordinator",
            backup_target_id=target.id if target else None,
            stop_resource=stop_resource,
            status="pending",
            attempt_id=new_id("bka"),
            requested_at=now,
            created_at=now,
        )
        await _record(
            actor,
            request_id,
            "storage-volume.backup-requested",
            row,
            stopResource=stop_resource,
            backupTargetId=row.backup_target_id,
            **payload,
        )
    runner.start_backup(row.id)
    return row.id


async def listed(actor: Principal, volume_id: str, status: str | None) -> list[StorageVolumeBackup]:
    """Backups of one visible volume, oldest first."""
    volume = await store.get_volume(actor, volume_id)
    rows = visible(actor).filter(storage_volume_id=volume.id)
    if status:
        rows = rows.filter(status=status)
    return await rows.order_by("id").limit(500)


async def get(actor: Principal, backup_id: str) -> StorageVolumeBackup:
    """A volume backup the caller may see, else 404."""
    return await lookup.first_or_404(actor, visible(actor), "volume backup", backup_id)


async def restore(
    actor: Principal,
    request_id: str,
    backup_id: str,
    into_id: str | None,
    runner: VolumeBackupRunner,
) -> str:
    """Start restoring a ready backup into its own volume or into ``into_id`` (a named volume
    on the same server, or not placed yet: it is placed on the backup's server)."""
    row = await get(actor, backup_id)
    field = "targetStorageVolumeId"
    target = await store.get_volume(actor, into_id or row.storage_volume_id)
    check_kind(target, field)
    if target.server_id not in (None, row.server_id):
        raise InvalidRequest(
            "the target volume lives on another server than the backup",
            details={"field": field, "serverId": target.server_id, "backupServerId": row.server_id},
        )
    if row.status != "ready":
        raise Conflict(f"the backup is {row.status}, not ready", details={"backupId": row.id})
    now = datetime.now(UTC)
    attempt = new_id("rsa")
    async with in_transaction():
        # Claimed in the same statement that checks it: two restores never run at once.
        claimed = await StorageVolumeBackup.filter(
            Q(restore_status__isnull=True) | Q(restore_status__not="pending"), id=row.id
        ).update(
            restore_attempt_id=attempt,
            restore_target_volume_id=target.id,
            restore_status="pending",
            restore_requested_at=now,
            restore_completed_at=None,
            restore_failed_at=None,
            restore_failure_code=None,
            restore_failure_message=None,
        )
        if not claimed:
            raise Conflict("a restore of this backup is running", details={"backupId": row.id})
        if target.server_id is None:
            await StorageVolume.filter(id=target.id, server_id__isnull=True).update(
                server_id=row.server_id
            )
        await _record(
            actor,
            request_id,
            "storage-volume.restore-requested",
            row,
            targetStorageVolumeId=target.id,
            restoreAttemptId=attempt,
        )
    runner.start_restore(row.id, target.id)
    return row.id
