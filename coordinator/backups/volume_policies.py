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

from coordinator.auth import Principal
from coordinator.backups import (
    policy_rules,
    policy_store,
    policy_verify,
    target_records,
    volume_service,
)
from coordinator.backups.volume_runner import VolumeBackupRunner
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.db.volume_models import StorageVolume
from coordinator.db.volume_policy_models import StorageVolumeBackupPolicy
from coordinator.volumes import store
from shared.errors import PlatformError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyRequest(policy_store.PolicySettings):
    """A volume policy as configured through the API."""

    storage_volume_id: str
    stop_resource: bool


KIND: Final = policy_store.PolicyKind(
    model=StorageVolumeBackupPolicy,
    backups=StorageVolumeBackup,
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
        "verify_after_backup",
    ),
    pruned_event="storage-volume.backup-pruned",
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
        # Before a new run replaces it: the last backup, once ready, verified when asked.
        await policy_verify.volume(runner, policy)
        retry = await policy_store.needs_retry(KIND, policy)
        due = policy_rules.is_due(policy, now)
        if due or retry:
            backup_id = await _take(runner, policy, volume, retry=retry and not due)
            if backup_id is not None:
                started.append(backup_id)
            await policy_store.record_run(
                KIND, policy, now, due=due, retry=retry, backup_id=backup_id
            )
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
        return await volume_service.take(
            volume,
            await policy_store.target_of(policy),
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


async def prune(
    runner: VolumeBackupRunner, policy: StorageVolumeBackupPolicy, now: datetime
) -> int:
    """Delete the volume's backups older than ``retentionDays`` and ready ones beyond
    ``keepCount`` (newest kept), artifacts first; a backup being restored or verified is never
    pruned."""
    return await policy_store.prune(KIND, runner.runner, policy, now)
