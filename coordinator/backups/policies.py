"""Backup policies: when to back up a database and how long to keep its backups, applied by a
small loop of the backups capability (``run_due``): due policies take a backup, a failed one is
tried once more when ``retryOnFailure``, and backups past ``retentionDays`` or beyond
``keepCount`` are deleted with their artifacts."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.backups import policy_rules, policy_store, service, target_records
from coordinator.backups.runner import BackupRunner
from coordinator.db.backup_models import DependencyBackup, DependencyBackupPolicy
from coordinator.db.backup_target_models import BackupTarget
from coordinator.db.dependency_models import DependencyResource
from coordinator.dependencies import service as dependencies
from shared.errors import PlatformError, Unavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyRequest(policy_store.PolicySettings):
    """A policy as configured through the API."""

    dependency_resource_id: str


KIND: Final = policy_store.PolicyKind(
    model=DependencyBackupPolicy,
    id_prefix="bkp",
    owner_field="dependency_resource_id",
    noun="backup policy",
    aggregate_type="dependency-resource",
    configured_event="dependency-resource.backup-policy-configured",
    audited=(
        "schedule_interval_hours",
        "retention_days",
        "keep_count",
        "enabled",
        "backup_target_id",
    ),
)


def visible(actor: Principal) -> QuerySet[DependencyBackupPolicy]:
    """Policies of the caller's organisation within its project scope."""
    return policy_store.scoped(KIND, actor)


async def configure(actor: Principal, request_id: str, request: PolicyRequest) -> str:
    """Create or replace the policy of one database; the first run is one interval from now."""
    database = await dependencies.get(actor, request.dependency_resource_id)
    if request.backup_target_id is not None:
        _ = await target_records.named(actor, request.backup_target_id, "backupTargetId")
    owner = policy_store.Owner(
        database.id, database.organization_id, database.project_id, database.environment_id
    )
    created = {"provider_key": database.provider_key}
    return await policy_store.configure(KIND, actor, request_id, owner, request, created)


async def listed(
    actor: Principal,
    dependency_resource_id: str | None,
    enabled_only: bool,
    due_at: datetime | None,
) -> list[DependencyBackupPolicy]:
    """Visible policies matching the filters (``dueAt``: due at or before that time)."""
    return await policy_store.listed(
        KIND, visible(actor), dependency_resource_id, enabled_only, due_at
    )


async def get(actor: Principal, policy_id: str) -> DependencyBackupPolicy:
    """A policy the caller may see, else 404."""
    return await policy_store.get(KIND, actor, visible(actor), policy_id)


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
