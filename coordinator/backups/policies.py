"""Backup policies: when to back up a database and how long to keep its backups, applied by a
small loop of the backups capability (``run_due``): due policies take a backup, a failed one is
tried once more when ``retryOnFailure``, and backups past ``retentionDays`` or beyond
``keepCount`` are deleted with their artifacts."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit, lookup
from coordinator.auth import Principal
from coordinator.backups import policy_rules, service, target_records
from coordinator.backups.runner import BackupRunner
from coordinator.db.backup_models import DependencyBackup, DependencyBackupPolicy
from coordinator.db.backup_target_models import BackupTarget
from coordinator.db.dependency_models import DependencyResource
from coordinator.dependencies import service as dependencies
from coordinator.ids import new_id
from shared.errors import PlatformError, Unavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyRequest:
    """A policy as configured through the API."""

    dependency_resource_id: str
    schedule_interval_hours: int
    retention_days: int
    keep_count: int | None
    retry_on_failure: bool
    enabled: bool
    backup_target_id: str | None = None


def visible(actor: Principal) -> QuerySet[DependencyBackupPolicy]:
    """Policies of the caller's organisation within its project scope."""
    rows = DependencyBackupPolicy.filter(organization_id=actor.organization_id)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(environment_id__in=list(actor.environment_ids))
    return rows


async def configure(actor: Principal, request_id: str, request: PolicyRequest) -> str:
    """Create or replace the policy of one database; the first run is one interval from now."""
    database = await dependencies.get(actor, request.dependency_resource_id)
    if request.backup_target_id is not None:
        _ = await target_records.named(actor, request.backup_target_id, "backupTargetId")
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "schedule_interval_hours": request.schedule_interval_hours,
        "retention_days": request.retention_days,
        "keep_count": request.keep_count,
        "retry_on_failure": request.retry_on_failure,
        "enabled": request.enabled,
        "backup_target_id": request.backup_target_id,
        "next_run_at": now + timedelta(hours=request.schedule_interval_hours),
        "updated_at": now,
    }
    async with in_transaction():
        row = await DependencyBackupPolicy.get_or_none(dependency_resource_id=database.id)
        if row is None:
            row = await DependencyBackupPolicy.create(
                id=new_id("bkp"),
                organization_id=database.organization_id,
                project_id=database.project_id,
                environment_id=database.environment_id,
                dependency_resource_id=database.id,
                provider_key=database.provider_key,
                **values,
            )
        else:
            await row.update_from_dict({**values, "version": row.version + 1}).save()
        await audit.record(
            actor=actor,
            event_type="dependency-resource.backup-policy-configured",
            aggregate_type="dependency-resource",
            aggregate_id=database.id,
            payload={
                "projectId": database.project_id,
                "environmentId": database.environment_id,
                "policyId": row.id,
                "scheduleIntervalHours": request.schedule_interval_hours,
                "retentionDays": request.retention_days,
                "keepCount": request.keep_count,
                "enabled": request.enabled,
                "backupTargetId": request.backup_target_id,
            },
            request_id=request_id,
        )
    return row.id


async def listed(
    actor: Principal,
    dependency_resource_id: str | None,
    enabled_only: bool,
    due_at: datetime | None,
) -> list[DependencyBackupPolicy]:
    """Visible policies matching the filters (``dueAt``: due at or before that time)."""
    rows = visible(actor)
    if dependency_resource_id:
        rows = rows.filter(dependency_resource_id=dependency_resource_id)
    if enabled_only:
        rows = rows.filter(enabled=True)
    if due_at is not None:
        rows = rows.filter(enabled=True, next_run_at__lte=due_at)
    return await rows.order_by("id").limit(500)


async def get(actor: Principal, policy_id: str) -> DependencyBackupPolicy:
    """A policy the caller may see, else 404."""
    return await lookup.first_or_404(actor, visible(actor), "backup policy", policy_id)


async def run_due(runner: BackupRunner, now: datetime) -> list[str]:
    """Take the backups that are due (and one retry of a failed one); prune. The new ids."""
    started: list[str] = []
    for policy in await DependencyBackupPolicy.filter(enabled=True).order_by("id"):
        database = await DependencyResource.get_or_none(
            id=policy.dependency_resource_id, deleted_at=None
        )
        if database is None:
            continue
        retry = await _needs_retry(policy)
        due = policy_rules.is_due(policy, now)
        if due or retry:
            try:
                target = None
                if policy.backup_target_id is not None:
                    target = await BackupTarget.get_or_none(id=policy.backup_target_id)
                    if target is None:
                        raise Unavailable(f"backup target {policy.backup_target_id!r} is gone")
                backup_id = await service.take(
                    database,
                    None,
                    None,
                    runner,
                    target,
                    policyId=policy.id,
                    retry=retry and not due,
                )
            except PlatformError as exc:  # not ready now: the next interval tries again
                logger.info("policy %s skipped a run: %s", policy.id, exc)
                backup_id = None
            if backup_id is not None:
                started.append(backup_id)
            updates = policy_rules.run_updates(
                policy, now, due=due, retry=retry, backup_id=backup_id
            )
            await DependencyBackupPolicy.filter(id=policy.id).update(**updates)
        await prune(runner, policy, now)
    return started


async def _needs_retry(policy: DependencyBackupPolicy) -> bool:
    if not policy.retry_on_failure or policy.last_backup_id is None:
        return False
    last = await DependencyBackup.get_or_none(id=policy.last_backup_id)
    return policy_rules.wants_retry(policy, last.status if last else None)


async def prune(runner: BackupRunner, policy: DependencyBackupPolicy, now: datetime) -> int:
    """Delete backups older than ``retentionDays`` and ready ones beyond ``keepCount`` (newest
    kept), artifacts first; a backup being taken or restored is never pruned."""
    rows = await DependencyBackup.filter(
        dependency_resource_id=policy.dependency_resource_id, status__in=["ready", "failed"]
    ).order_by("-id")
    doomed = policy_rules.doomed(
        policy,
        rows,
        now,
        lambda row: row.restore_status == "pending" or row.verification_status == "pending",
    )
    removed = 0
    for row in doomed:
        try:
            await (await runner.store(row.backup_target_id)).delete(row.id)
        except (PlatformError, OSError) as exc:  # the target is unreachable: the next look retries
            logger.warning("could not delete the artifact of %s: %s", row.id, exc)
            continue
        removed += 1
        async with in_transaction():
            await DependencyBackup.filter(id=row.id).delete()
            await audit.record(
                actor=None,
                organization_id=row.organization_id,
                event_type="dependency-resource.backup-pruned",
                aggregate_type="dependency-resource",
                aggregate_id=row.dependency_resource_id,
                payload={
                    "projectId": row.project_id,
                    "environmentId": row.environment_id,
                    "backupId": row.id,
                    "policyId": policy.id,
                },
            )
    return removed
