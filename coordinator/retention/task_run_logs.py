"""Retention of task-run logs (``scheduled-task-run-logs``, a Berth category): the output lines
of runs that finished before a cutoff, never those of a run still accepted or running; the runs
themselves stay (the operator work ledger's prune removes runs). Organizations without a policy
of their own get the built-in default (``--task-run-log-retention-days``, 30)."""

from datetime import datetime
from typing import Any, Final

from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.db.notification_models import RetentionDefault
from coordinator.db.task_models import ScheduledTaskRun, ScheduledTaskRunLog

CATEGORY: Final = "scheduled-task-run-logs"
# A run in these states has ended; only their logs are ever pruned.
FINISHED: Final = ("succeeded", "failed", "skipped")


def _runs(before: datetime, organization_ids: list[str] | None, excluded: list[str]) -> Any:
    runs = ScheduledTaskRun.filter(status__in=FINISHED, finished_at__lt=before)
    if organization_ids is not None:
        runs = runs.filter(organization_id__in=organization_ids)
    if excluded:
        runs = runs.exclude(organization_id__in=excluded)
    return runs


async def prune(organization_id: str, before: datetime, *, dry_run: bool) -> tuple[int, int]:
    """Log lines of the organization's runs finished before ``before``: ``(matched, pruned)``
    (a dry run only counts; one selection serves both, so it reports what the real run
    removes)."""
    runs = _runs(before, [organization_id], [])
    lines = ScheduledTaskRunLog.filter(run_id__in=Subquery(runs.values("id")))
    matched = await lines.count()
    if dry_run or not matched:
        return matched, 0
    # ``log_count`` stays: it numbers lines, and a number is never reused.
    return matched, int(await lines.delete())


async def prune_by_default(before: datetime) -> dict[str, int]:
    """The built-in default: for every organization without a ``scheduled-task-run-logs``
    policy of its own (enabled or not: a policy, once set, decides), remove the log lines of
    runs finished before ``before``; lines removed per organization (each audited)."""
    own: list[Any] = await RetentionDefault.filter(category=CATEGORY).values_list(
        "organization_id", flat=True
    )
    runs = _runs(before, None, [str(o) for o in own if o]).filter(log_count__gt=0)
    organizations: list[Any] = await runs.distinct().values_list("organization_id", flat=True)
    removed: dict[str, int] = {}
    for organization_id in sorted({str(o) for o in organizations}):
        async with in_transaction():
            _, pruned = await prune(organization_id, before, dry_run=False)
            if pruned:
                await audit.record(
                    actor=None,
                    event_type="retention-defaults.pruned",
                    aggregate_type="retention-default",
                    aggregate_id=None,
                    payload={
                        "category": CATEGORY,
                        "prunedCount": pruned,
                        "before": before.isoformat(),
                        "builtInDefault": True,
                    },
                    organization_id=organization_id,
                )
        if pruned:
            removed[organization_id] = pruned
    return removed
