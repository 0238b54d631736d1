"""Backup rules and persistence: take, list, show, restore (acknowledged), each mutation audited.
Backups are scoped like their dependency resource: another tenant's id is a 404."""

from datetime import UTC, datetime
from typing import Final

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit, lookup
from coordinator.auth import Principal
from coordinator.backups import target_records
from coordinator.backups.runner import BackupRunner
from coordinator.db.backup_models import DependencyBackup
from coordinator.db.backup_target_models import BackupTarget
from coordinator.db.dependency_models import DependencyResource
from coordinator.dependencies import service as dependencies
from coordinator.ids import new_id
from shared.errors import Conflict, InvalidRequest

# What Berth can dump and restore (a kind added later is refused with a 400 naming these).
BACKUP_KINDS: Final = ("postgres", "mysql", "redis")
STATUSES: Final = ("pending", "ready", "failed")


def visible(actor: Principal) -> QuerySet[DependencyBackup]:
    """Backups of the caller's organisation within its project scope."""
    rows = DependencyBackup.filter(organization_id=actor.organization_id)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(environment_id__in=list(actor.environment_ids))
    return rows


async def _record(
    actor: Principal | None,
    request_id: str | None,
    event: str,
    row: DependencyBackup,
    **payload: object,
) -> None:
    await audit.record(
        actor=actor,
        organization_id=row.organization_id,
        event_type=event,
        aggregate_type="dependency-resource",
        aggregate_id=row.dependency_resource_id,
        payload={
            "projectId": row.project_id,
            "environmentId": row.environment_id,
            "backupId": row.id,
            **payload,
        },
        request_id=request_id,
    )


def _check_backupable(row: DependencyResource, field: str) -> None:
    if row.kind not in BACKUP_KINDS:
        raise InvalidRequest(
            f"backups of {row.kind} are not supported yet; supported: {', '.join(BACKUP_KINDS)}",
            details={"field": field, "kind": row.kind, "supported": list(BACKUP_KINDS)},
        )
    if row.source_mode != dependencies.MANAGED or row.server_id is None:
        raise Conflict(
            "only a database Berth runs can be backed up or restored by Berth",
            details={"dependencyResourceId": row.id, "sourceMode": row.source_mode},
        )
    if row.lifecycle_status != "ready":
        raise Conflict(
            f"the dependency resource is {row.lifecycle_status}, not ready",
            details={"dependencyResourceId": row.id},
        )


async def create(
    actor: Principal,
    request_id: str,
    dependency_resource_id: str,
    runner: BackupRunner,
    backup_target_id: str | None = None,
) -> str:
    """Record a pending backup and take it in the background (into a named backup target, or
    the coordinator's storage)."""
    database = await dependencies.get(actor, dependency_resource_id)
    target = None
    if backup_target_id is not None:
        target = await target_records.named(actor, backup_target_id, "backupTargetId")
    return await take(database, actor, request_id, runner, target)


async def take(
    database: DependencyResource,
    actor: Principal | None,
    request_id: str | None,
    runner: BackupRunner,
    target: BackupTarget | None = None,
    **payload: object,
) -> str:
    """Back up ``database`` (an API call's, or a policy's when ``actor`` is None) into
    ``target`` (the coordinator's storage when None)."""
    _check_backupable(database, "dependencyResourceId")
    assert database.server_id is not None  # noqa: S101 - checked above
    now = datetime.now(UTC)
    async with in_transaction():
        row = await DependencyBackup.create(
            id=new_id("dbk"),
            organization_id=database.organization_id,
            project_id=database.project_id,
            environment_id=database.environment_id,
            dependency_resource_id=database.id,
            server_id=database.server_id,
            dependency_kind=database.kind,
            provider_key=database.provider_key,
            target=target.kind if target else "coordinator",
            backup_target_id=target.id if target else None,
            status="pending",
            attempt_id=new_id("bka"),
            requested_at=now,
            created_at=now,
        )
        if target is not None:
            payload["backupTargetId"] = target.id
        await _record(actor, request_id, "dependency-resource.backup-requested", row, **payload)
    runner.start_backup(row.id)
    return row.id


async def listed(
    actor: Principal, dependency_resource_id: str, status: str | None
) -> list[DependencyBackup]:
    """Backups of one visible dependency resource, oldest first."""
    database = await dependencies.get(actor, dependency_resource_id)
    rows = visible(actor).filter(dependency_resource_id=database.id)
    if status:
        rows = rows.filter(status=status)
    return await rows.order_by("id").limit(500)


async def get(actor: Principal, backup_id: str) -> DependencyBackup:
    """A backup the caller may see, else 404."""
    return await lookup.first_or_404(actor, visible(actor), "backup", backup_id)


async def restore(
    actor: Principal,
    request_id: str,
    backup_id: str,
    into_id: str | None,
    runner: BackupRunner,
) -> str:
    """Start restoring a ready backup into its own database or into ``into_id`` (a clone)."""
    row = await get(actor, backup_id)
    target = await dependencies.get(actor, into_id or row.dependency_resource_id)
    _check_backupable(target, "targetDependencyResourceId")
    if target.kind != row.dependency_kind:
        raise InvalidRequest(
            f"a {row.dependency_kind} backup cannot be restored into a {target.kind} database",
            details={"field": "targetDependencyResourceId"},
        )
    if row.status != "ready":
        raise Conflict(f"the backup is {row.status}, not ready", details={"backupId": row.id})
    now = datetime.now(UTC)
    attempt = new_id("rsa")
    async with in_transaction():
        # Claimed in the same statement that checks it: two restores never run at once.
        claimed = await DependencyBackup.filter(
            Q(restore_status__isnull=True) | Q(restore_status__not="pending"), id=row.id
        ).update(
            restore_attempt_id=attempt,
            restore_status="pending",
            restore_requested_at=now,
            restore_completed_at=None,
            restore_failed_at=None,
            restore_failure_code=None,
            restore_failure_message=None,
        )
        if not claimed:
            raise Conflict("a restore of this backup is running", details={"backupId": row.id})
        await _record(
            actor,
            request_id,
            "dependency-resource.restore-requested",
            row,
            targetDependencyResourceId=target.id,
            restoreAttemptId=attempt,
        )
    runner.start_restore(row.id, target.id)
    return row.id


async def verify(actor: Principal, request_id: str, backup_id: str, runner: BackupRunner) -> str:
    """Start a verification: the backup restored into a throwaway database and counted."""
    row = await get(actor, backup_id)
    source = await dependencies.get(actor, row.dependency_resource_id)
    await start_verification(row, source, runner, actor, request_id)
    return row.id


async def start_verification(
    row: DependencyBackup,
    source: DependencyResource,
    runner: BackupRunner,
    actor: Principal | None,
    request_id: str | None,
    **payload: object,
) -> None:
    """Claim the verification of a ready backup (one at a time), audit it (``actor`` none: a
    policy asked, named in ``payload``) and start it."""
    _check_backupable(source, "backupId")
    if row.status != "ready":
        raise Conflict(f"the backup is {row.status}, not ready", details={"backupId": row.id})
    async with in_transaction():
        claimed = await DependencyBackup.filter(
            Q(verification_status__isnull=True) | Q(verification_status__not="pending"), id=row.id
        ).update(
            verification_status="pending",
            verification_requested_at=datetime.now(UTC),
            verification_message=None,
        )
        if not claimed:
            raise Conflict("a verification of this backup is running", details={"backupId": row.id})
        await _record(
            actor, request_id, "dependency-resource.backup-verification-requested", row, **payload
        )
    runner.start_verify(row.id)


async def kept_count(dependency_resource_id: str) -> int:
    """How many ready backups of a database are kept (its ``backupRelationship``)."""
    return await DependencyBackup.filter(
        dependency_resource_id=dependency_resource_id, status="ready"
    ).count()
