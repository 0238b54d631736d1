"""The rules every backup policy shares, on plain values (the database and volume policy tests
drive them through the API and the loop)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from coordinator.backups import policy_rules

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)


@dataclass
class Policy:
    schedule_interval_hours: int = 6
    retention_days: int = 3
    keep_count: int | None = None
    retry_on_failure: bool = True
    next_run_at: datetime | None = None
    last_backup_id: str | None = None
    retried_backup_id: str | None = None


@dataclass
class Backup:
    id: str
    status: str
    created_at: datetime
    busy: bool = False


def test_due_and_one_retry_per_failed_run() -> None:
    assert not policy_rules.is_due(Policy(), NOW)
    assert policy_rules.is_due(Policy(next_run_at=NOW), NOW)
    assert not policy_rules.is_due(Policy(next_run_at=NOW + timedelta(seconds=1)), NOW)
    failed = Policy(last_backup_id="b1")
    assert policy_rules.wants_retry(failed, "failed")
    assert not policy_rules.wants_retry(failed, "ready")
    assert not policy_rules.wants_retry(failed, None)
    assert not policy_rules.wants_retry(
        Policy(last_backup_id="b1", retry_on_failure=False), "failed"
    )
    assert not policy_rules.wants_retry(
        Policy(last_backup_id="b1", retried_backup_id="b1"), "failed"
    )


def test_a_run_moves_the_schedule_and_remembers_its_retry() -> None:
    policy = Policy(last_backup_id="b1")
    assert policy_rules.run_updates(policy, NOW, due=True, retry=False, backup_id="b2") == {
        "last_run_at": NOW,
        "next_run_at": NOW + timedelta(hours=6),
        "last_backup_id": "b2",
    }
    # A retry that could not start still counts: the failed run is not retried again.
    assert policy_rules.run_updates(policy, NOW, due=False, retry=True, backup_id=None) == {
        "last_run_at": NOW,
        "retried_backup_id": "b1",
    }


def test_retention_drops_old_and_surplus_ready_backups_but_never_busy_ones() -> None:
    rows = [
        Backup("b6", "ready", NOW - timedelta(hours=1)),
        Backup("b5", "failed", NOW - timedelta(hours=2)),
        Backup("b4", "ready", NOW - timedelta(hours=3), busy=True),
        Backup("b3", "ready", NOW - timedelta(hours=4)),
        Backup("b2", "ready", NOW - timedelta(hours=5)),
        Backup("b1", "ready", NOW - timedelta(days=4)),
        Backup("b0", "ready", NOW - timedelta(days=5), busy=True),
    ]

    def dropped(policy: Policy) -> list[str]:
        return [b.id for b in policy_rules.doomed(policy, rows, NOW, lambda b: b.busy)]

    assert dropped(Policy()) == ["b1"]
    assert dropped(Policy(keep_count=2)) == ["b2", "b1"]
    assert dropped(Policy(keep_count=1, retention_days=10)) == ["b3", "b2", "b1"]
