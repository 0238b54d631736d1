"""The persistence every backup policy shares (database and volume policies): the scoped listing
and lookup, configure's upsert with its audit event, and what a run reads, records and prunes;
the owner column (and the backups' table) is what differs."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic.alias_generators import to_camel
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit, lookup
from coordinator.auth import Principal
from coordinator.backups import policy_rules
from coordinator.backups.runner import BackupRunner
from coordinator.db.backup_models import DependencyBackup, DependencyBackupPolicy
from coordinator.db.backup_target_models import BackupTarget
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.db.volume_policy_models import StorageVolumeBackupPolicy
from coordinator.ids import new_id
from shared.errors import PlatformError, Unavailable

logger = logging.getLogger(__name__)

Policy = TypeVar("Policy", DependencyBackupPolicy, StorageVolumeBackupPolicy)
Backup = TypeVar("Backup", DependencyBackup, StorageVolumeBackup)


@dataclass(frozen=True, kw_only=True)
class PolicySettings:
    """The settings every policy is configured with; a kind's request adds its owner's id
    (named like the policy's owner column) and its own options (stored in same-named columns)."""

    schedule_interval_hours: int
    retention_days: int
    keep_count: int | None
    retry_on_failure: bool
    enabled: bool
    backup_target_id: str | None = None
    verify_after_backup: bool = False


@dataclass(frozen=True)
class PolicyKind(Generic[Policy, Backup]):
    """What tells one kind of policy from another."""

    model: type[Policy]
    backups: type[Backup]  # the table of the backups its runs take
    id_prefix: str
    owner_field: str  # the policy's column naming what it backs up
    noun: str  # in a 404's message
    aggregate_type: str
    configured_event: str
    audited: tuple[str, ...]  # the settings the configured event records, in its order
    pruned_event: str


@dataclass(frozen=True)
class Owner:
    """The database or volume a policy belongs to: the scope the policy copies."""

    id: str
    organization_id: str
    project_id: str
    environment_id: str


def scoped(kind: PolicyKind[Policy, Backup], actor: Principal) -> QuerySet[Policy]:
    """Policies of the caller's organisation within its project and environment scope."""
    rows = kind.model.filter(organization_id=actor.organization_id)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(environment_id__in=list(actor.environment_ids))
    return rows


async def listed(
    kind: PolicyKind[Policy, Backup],
    visible: QuerySet[Policy],
    owner_id: str | None,
    enabled_only: bool,
    due_at: datetime | None,
) -> list[Policy]:
    """Of ``visible``, the policies matching the filters (``dueAt``: due at or before that
    time), oldest first, at most 500."""
    rows = visible
    if owner_id:
        rows = rows.filter(**{kind.owner_field: owner_id})
    if enabled_only:
        rows = rows.filter(enabled=True)
    if due_at is not None:
        rows = rows.filter(enabled=True, next_run_at__lte=due_at)
    return await rows.order_by("id").limit(500)


async def get(
    kind: PolicyKind[Policy, Backup], actor: Principal, visible: QuerySet[Policy], policy_id: str
) -> Policy:
    """A policy of ``visible``, else 404."""
    return await lookup.first_or_404(actor, visible, kind.noun, policy_id)


async def configure(
    kind: PolicyKind[Policy, Backup],
    actor: Principal,
    request_id: str,
    owner: Owner,
    request: PolicySettings,
    created: Mapping[str, Any] | None = None,
) -> str:
    """Create or replace the owner's policy from ``request`` (``created``: more columns a new
    one gets); the first run is one interval from now. Audited in the same transaction."""
    settings = {
        field.name: getattr(request, field.name)
        for field in fields(request)
        if field.name != kind.owner_field
    }
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        **settings,
        "next_run_at": now + timedelta(hours=request.schedule_interval_hours),
        "updated_at": now,
    }
    owned: dict[str, Any] = {kind.owner_field: owner.id}
    async with in_transaction():
        row = await kind.model.get_or_none(**owned)
        if row is None:
            row = await kind.model.create(
                id=new_id(kind.id_prefix),
                organization_id=owner.organization_id,
                project_id=owner.project_id,
                environment_id=owner.environment_id,
                **owned,
                **(created or {}),
                **values,
            )
        else:
            await row.update_from_dict({**values, "version": row.version + 1}).save()
        await audit.record(
            actor=actor,
            event_type=kind.configured_event,
            aggregate_type=kind.aggregate_type,
            aggregate_id=owner.id,
            payload={
                "projectId": owner.project_id,
                "environmentId": owner.environment_id,
                "policyId": row.id,
                **{to_camel(name): settings[name] for name in kind.audited},
            },
            request_id=request_id,
        )
    return row.id


async def target_of(policy: Policy) -> BackupTarget | None:
    """Where the policy's runs go: its backup target, or ``None`` for the coordinator's
    storage; ``Unavailable`` when that target is gone."""
    if policy.backup_target_id is None:
        return None
    target = await BackupTarget.get_or_none(id=policy.backup_target_id)
    if target is None:
        raise Unavailable(f"backup target {policy.backup_target_id!r} is gone")
    return target


async def needs_retry(kind: PolicyKind[Policy, Backup], policy: Policy) -> bool:
    """The policy's last backup failed and is to be tried once more (``policy_rules``)."""
    if not policy.retry_on_failure or policy.last_backup_id is None:
        return False
    last = await kind.backups.get_or_none(id=policy.last_backup_id)
    return policy_rules.wants_retry(policy, last.status if last else None)


async def record_run(
    kind: PolicyKind[Policy, Backup],
    policy: Policy,
    now: datetime,
    *,
    due: bool,
    retry: bool,
    backup_id: str | None,
) -> None:
    """Store what one look that ran changed on the policy (its next run, the retried backup)."""
    updates = policy_rules.run_updates(policy, now, due=due, retry=retry, backup_id=backup_id)
    await kind.model.filter(id=policy.id).update(**updates)


async def prune(
    kind: PolicyKind[Policy, Backup], runner: BackupRunner, policy: Policy, now: datetime
) -> int:
    """Delete the owner's backups older than ``retentionDays`` and ready ones beyond
    ``keepCount`` (newest kept), artifacts first, each audited; a backup being restored or
    verified is never pruned. How many went."""
    owned: dict[str, Any] = {kind.owner_field: getattr(policy, kind.owner_field)}
    rows = await kind.backups.filter(**owned, status__in=["ready", "failed"]).order_by("-id")
    doomed = policy_rules.doomed(
        policy, rows, now, lambda row: "pending" in (row.restore_status, row.verification_status)
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
            await kind.backups.filter(id=row.id).delete()
            await audit.record(
                actor=None,
                organization_id=row.organization_id,
                event_type=kind.pruned_event,
                aggregate_type=kind.aggregate_type,
                aggregate_id=getattr(row, kind.owner_field),
                payload={
                    "projectId": row.project_id,
                    "environmentId": row.environment_id,
                    "backupId": row.id,
                    "policyId": policy.id,
                },
            )
    return removed
