"""The rules every backup policy shares (database and volume policies): when a run is due, when
a failed run is retried, what a run changes on the policy, and which backups retention drops."""

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar


class PolicyState(Protocol):
    """The fields of a policy (any kind) the rules read."""

    schedule_interval_hours: int
    retention_days: int
    keep_count: int | None
    retry_on_failure: bool
    next_run_at: datetime | None
    last_backup_id: str | None
    retried_backup_id: str | None


class KeptBackup(Protocol):
    """The fields of a backup (any kind) retention reads."""

    status: str
    created_at: datetime


Backup = TypeVar("Backup", bound=KeptBackup)


def is_due(policy: PolicyState, now: datetime) -> bool:
    """The scheduled run's time has come."""
    return policy.next_run_at is not None and policy.next_run_at <= now


def wants_retry(policy: PolicyState, last_status: str | None) -> bool:
    """The policy's last backup failed and was not retried yet (one more attempt per run)."""
    if not policy.retry_on_failure or policy.last_backup_id is None:
        return False
    if policy.retried_backup_id == policy.last_backup_id:
        return False
    return last_status == "failed"


def run_updates(
    policy: PolicyState, now: datetime, *, due: bool, retry: bool, backup_id: str | None
) -> dict[str, object]:
    """What one look that ran (``due`` or ``retry``) changes on the policy."""
    updates: dict[str, object] = {"last_run_at": now}
    if due:
        updates["next_run_at"] = now + timedelta(hours=policy.schedule_interval_hours)
    if retry:
        # The retry itself is never retried: one more attempt per failed run.
        updates["retried_backup_id"] = backup_id or policy.last_backup_id
    if backup_id is not None:
        updates["last_backup_id"] = backup_id
    return updates


def doomed(
    policy: PolicyState,
    newest_first: Iterable[Backup],
    now: datetime,
    busy: Callable[[Backup], bool],
) -> list[Backup]:
    """Of ``ready``/``failed`` backups (newest first), those older than ``retentionDays`` and
    the ready ones beyond the newest ``keepCount``; a ``busy`` one (being restored or
    verified) is never dropped."""
    cutoff = now - timedelta(days=policy.retention_days)
    dropped: list[Backup] = []
    kept_ready = 0
    for row in newest_first:
        if busy(row):
            continue
        if row.created_at < cutoff:
            dropped.append(row)
        elif row.status == "ready":
            kept_ready += 1
            if policy.keep_count is not None and kept_ready > policy.keep_count:
                dropped.append(row)
    return dropped
