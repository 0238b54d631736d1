"""Backup policies: when to back up a database and how long to keep its backups, applied by a
small loop of the backups capability (``run_due``): due policies take a backup, a failed one is
tried once more when ``retryOnFailure``, and backups past ``retentionDays`` or beyond
``keepCount`` are deleted with their artifacts."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from tortoise.queryset import QuerySet

from coordinator.auth import Principal
from coordinator.backups import policy_rules, policy_store, policy_verify, service, target_records
from coordinator.backups.runner import BackupRunner
from coordinator.db.backup_models import DependencyBackup, DependencyBackupPolicy
from coordinator.db.dependency_models import DependencyResource
from coordinator.dependencies import service as dependencies
from shared.errors import PlatformError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyRequest(policy_store.PolicySettings):
    """A policy as configured through the API."""

    dependency_resource_id: str


KIND: Final = policy_store.PolicyKind(
    model=DependencyBackupPolicy,
    backups=DependencyBackup,
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
        "verify_after_backup",
    ),
    pruned_event="dependency-resource.backup-pruned",
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
        # Before a new run replaces it: the last backup, once ready, verified when asked.
        await policy_verify.database(runner, policy)
        retry = await policy_store.needs_retry(KIND, policy)
        due = policy_rules.is_due(policy, now)
        if due or retry:
            try:
                backup_id = await service.take(
                    database,
                    None,
                    None,
                    runner,
                    await policy_store.target_of(policy),
                    policyId=policy.id,
                    retry=retry and not due,
                )
            except PlatformError as exc:  # not ready now: the next interval tries again
                logger.info("policy %s skipped a run: %s", policy.id, exc)
                backup_id = None
            if backup_id is not None:
                started.append(backup_id)
            await policy_store.record_run(
                KIND, policy, now, due=due, retry=retry, backup_id=backup_id
            )
        await prune(runner, policy, now)
    return started


async def prune(runner: BackupRunner, policy: DependencyBackupPolicy, now: datetime) -> int:
    """Delete backups older than ``retentionDays`` and ready ones beyond ``keepCount`` (newest
    kept), artifacts first; a backup being taken, restored or verified is never pruned."""
    return await policy_store.prune(KIND, runner, policy, now)
