"""Storage-volume backup policies: when to back up a named volume and how long to keep its
backups. The same rules as database policies (``policy_rules``), applied by the backups
capability's loop (``run_due``): a due policy takes a backup, a failed one is tried once more
when ``retryOnFailure``, and backups past ``retentionDays`` or beyond ``keepCount`` are
deleted with their artifacts. Scoped like volumes: another tenant's id is a 404."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.backups import policy_rules, policy_store, target_records, volume_service
from coordinator.backups.volume_runner import VolumeBackupRunner
from coordinator.db.backup_target_models import BackupTarget
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.db.volume_models import StorageVolume
from coordinator.db.volume_policy_models import StorageVolumeBackupPolicy
from coordinator.volumes import store
from shared.errors import PlatformError, Unavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyRequest(policy_store.PolicySettings):
    """A volume policy as configured through the API."""

    storage_volume_id: str
    stop_resource: bool


KIND: Final = policy_store.PolicyKind(
    model=StorageVolumeBackupPolicy,
    id_prefix="vbp",
    owner_field="storage_volume_id",
    noun="volume backup policy",
    aggregate_type="storage-volume",
    configured_event="storage-volume.backup-policy-configured",
    audited=(
        "schedule_interval_hours",
        "retention_days",
        "keep_count",
        "retry_on_failure",
        "enabled",
        "stop_resource",
        "backup_target_id",
    ),
)


def visible(actor: Principal) -> QuerySet[StorageVolumeBackupPolicy]:
    """Policies of the caller's organisation within its project scope, on volumes it may see."""
    rows = policy_store.scoped(KIND, actor)
    if actor.server_ids:
        # Server scope is the volume's placement, which can change: ask the volumes' own scope.
        volumes = Subquery(store.visible(actor).values("id"))
        rows = rows.filter(storage_volume_id__in=volumes)
    return rows


async def configure(actor: Principal, request_id: str, request: PolicyRequest) -> str:
    """Create or replace the policy of one named volume; the first run is one interval from
    now. A volume no deployment placed yet may have one: its runs wait until it is placed."""
    volume = await store.get_volume(actor, request.storage_volume_id)
    volume_service.check_kind(volume, "storageVolumeId")
    if request.backup_target_id is not None:
        _ = await target_records.named(actor, request.backup_target_id, "backupTargetId")
    owner = policy_store.Owner(
        volume.id,
        volume.organization_id,  # type: ignore[attr-defined]
        volume.project_id,
        volume.environment_id,
    )
    return await policy_store.configure(KIND, actor, request_id, owner, request)


async def listed(
    actor: Principal,
    storage_volume_id: str | None,
    enabled_only: bool,
    due_at: datetime | None,
) -> list[StorageVolumeBackupPolicy]:
    """Visible policies matching the filters (``dueAt``: due at or before that time)."""
    return await policy_store.listed(KIND, visible(actor), storage_volume_id, enabled_only, due_at)


async def get(actor: Principal, policy_id: str) -> StorageVolumeBackupPolicy:
    """A policy the caller may see, else 404."""
    return await policy_store.get(KIND, actor, visible(actor), policy_id)


async def run_due(runner: VolumeBackupRunner, now: datetime) -> list[str]:
    """Take the volume backups that are due (and one retry of a failed one); prune. The new
    backups' ids."""
    started: list[str] = []
    for policy in await StorageVolumeBackupPolicy.filter(enabled=True).order_by("id"):
        volume = await StorageVolume.get_or_none(id=policy.storage_volume_id)
        if volume is None:
            continue
        retry = await _needs_retry(policy)
        due = policy_rules.is_due(policy, now)
        if due or retry:
            backup_id = await _take(runner, policy, volume, retry=retry and not due)
            if backup_id is not None:
                started.append(backup_id)
            updates = policy_rules.run_updates(
                policy, now, due=due, retry=retry, backup_id=backup_id
            )
            await StorageVolumeBackupPolicy.filter(id=policy.id).update(**updates)
        await prune(runner, policy, now)
    return started


async def _take(
    runner: VolumeBackupRunner,
    policy: StorageVolumeBackupPolicy,
    volume: StorageVolume,
    *,
    retry: bool,
) -> str | None:
    try:
        target = None
        if policy.backup_target_id is not None:
            target = await BackupTarget.get_or_none(id=policy.backup_target_id)
            if target is None:
                raise Unavailable(f"backup target {policy.backup_target_id!r} is gone")
        return await volume_service.take(
            volume,
            target,
            runner,
            policy.stop_resource,
            None,
            None,
            policyId=policy.id,
            retry=retry,
        )
    except PlatformError as exc:  # not placed or not ready now: the next interval tries again
        logger.info("volume policy %s skipped a run: %s", policy.id, exc)
        return None


async def _needs_retry(policy: StorageVolumeBackupPolicy) -> bool:
    if not policy.retry_on_failure or policy.last_backup_id is None:
        return False
    last = await StorageVolumeBackup.get_or_none(id=policy.last_backup_id)
    return policy_rules.wants_retry(policy, last.status if last else None)


async def prune(
    runner: VolumeBackupRunner, policy: StorageVolumeBackupPolicy, now: datetime
) -> int:
    """Delete the volume's backups older than ``retentionDays`` and ready ones beyond
    ``keepCount`` (newest kept), artifacts first; a backup being restored or verified is never
    pruned."""
    rows = await StorageVolumeBackup.filter(
        storage_volume_id=policy.storage_volume_id, status__in=["ready", "failed"]
    ).order_by("-id")
    doomed = policy_rules.doomed(
        policy, rows, now, lambda row: "pending" in (row.restore_status, row.verification_status)
    )
    removed = 0
    for row in doomed:
        try:
            await (await runner.runner.store(row.backup_target_id)).delete(row.id)
        except (PlatformError, OSError) as exc:  # the target is unreachable: the next look retries
            logger.warning("could not delete the artifact of %s: %s", row.id, exc)
            continue
        removed += 1
        async with in_transaction():
            await StorageVolumeBackup.filter(id=row.id).delete()
            await audit.record(
                actor=None,
                organization_id=row.organization_id,
                event_type="storage-volume.backup-pruned",
                aggregate_type="storage-volume",
                aggregate_id=row.storage_volume_id,
                payload={
                    "projectId": row.project_id,
                    "environmentId": row.environment_id,
                    "backupId": row.id,
                    "policyId": policy.id,
                },
            )
    return removed
