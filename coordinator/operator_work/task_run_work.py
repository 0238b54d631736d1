"""Task runs as operator work (kind ``scheduled-task-run``): every scheduled, manual and one-off
run with its attempt, exit code and failure; cancel stops a run still going, retry runs its task
again now (a new manual run); finished runs are history, pruned here."""

from datetime import UTC, datetime
from typing import Any, Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db.task_models import ScheduledTask, ScheduledTaskRun, ScheduledTaskRunLog
from coordinator.operator_work.kinds import WorkFilters, WorkItem, WorkKind, WorkStatus
from coordinator.scheduling import SCHEDULER_KEY, failures, runs
from shared.errors import Conflict, NotFound

_STATUS: Final[dict[str, WorkStatus]] = {
    "accepted": "pending",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    # A slot that did not run (forbidden overlap, missed while down, agent offline).
    "skipped": "canceled",
}


def item(row: ScheduledTaskRun, now: datetime) -> WorkItem:
    """A run in the ledger's shape."""
    status = _STATUS.get(row.status, "unknown")
    if status == "pending" and row.attempt > 0 and row.not_before > now:
        status = "retry-scheduled"
    code = failures.of_run(row)
    kind = failures.KINDS[code] if code is not None else None
    phase = {"pending": "queued", "retry-scheduled": "queued", "running": "running"}
    details = {
        "runStatus": row.status,
        "triggerKind": row.trigger_kind,
        "attempt": str(row.attempt),
    }
    for name, value in (
        ("exitCode", row.exit_code),
        ("skippedReason", row.skipped_reason),
        ("failureSummary", row.failure_summary),
        ("slotAt", row.slot_at.isoformat() if row.slot_at else None),
    ):
        if value is not None:
            details[name] = str(value)[:500]
    return WorkItem(
        id=row.id,
        kind="scheduled-task-run",
        status=status,
        operation_key=f"scheduled-task-run.{row.trigger_kind}",
        phase=phase.get(status, "finished"),
        step=row.status,
        started_at=row.started_at,
        updated_at=row.finished_at or row.started_at or row.dispatched_at or row.created_at,
        finished_at=row.finished_at,
        error_code=code,
        error_category=kind.category if kind is not None else None,
        retriable=kind is not None and kind.retriable,
        next_actions={
            "pending": ["cancel"],
            "retry-scheduled": ["cancel"],
            "running": ["cancel"],
            "failed": ["retry"] if kind is not None and kind.retriable else [],
        }.get(status, []),
        safe_details=details,
        refs={
            "projectId": row.project_id,
            "resourceId": row.resource_id,
            "serverId": row.server_id,
            "deploymentId": row.deployment_id,
            "taskId": row.task_id,
        },
    )


class TaskRunWork:
    """The ledger's view of task runs."""

    kind: WorkKind = "scheduled-task-run"
    prefix = "tkr"

    async def listed(self, actor: Principal, filters: WorkFilters) -> list[WorkItem]:
        """Newest runs the caller may see."""
        query = ScheduledTaskRun.filter(organization_id=actor.organization_id)
        if filters.resource_id:
            query = query.filter(resource_id=filters.resource_id)
        if filters.server_id:
            query = query.filter(server_id=filters.server_id)
        if filters.deployment_id:
            query = query.filter(deployment_id=filters.deployment_id)
        if filters.status:
            wanted = [k for k, v in _STATUS.items() if v == filters.status]
            if filters.status == "retry-scheduled":
                wanted = ["accepted"]
            query = query.filter(status__in=wanted)
        now = datetime.now(UTC)
        found: list[WorkItem] = []
        for row in await query.order_by("-id").limit(filters.limit * 5):
            if not actor.can_see_resource(row.project_id, row.environment_id, row.resource_id):
                continue
            shown = item(row, now)
            if filters.status and shown.status != filters.status:
                continue
            found.append(shown)
            if len(found) == filters.limit:
                break
        return found

    async def get(self, actor: Principal, work_id: str) -> WorkItem:
        """One run the caller may see, else 404."""
        return item(await runs.get_run(actor, work_id), datetime.now(UTC))

    async def cancel(self, call: Any, work_id: str, reason: str | None) -> datetime:
        """Stop a run still waiting or going (the scheduler stops its container or exec)."""
        call.actor.require("scheduled-tasks:run")
        row = await runs.get_run(call.actor, work_id)
        now = datetime.now(UTC)
        async with in_transaction():
            moved = await ScheduledTaskRun.filter(
                id=row.id, status__in=runs.ACTIVE, stop_requested_at=None
            ).update(stop_requested_at=now)
            if not moved:
                raise Conflict(
                    f"only a run that is accepted or running can be canceled (this one is "
                    f"{row.status})",
                    details={"status": row.status},
                )
            await audit.record(
                actor=call.actor,
                event_type="operator-work.canceled",
                aggregate_type="operator-work",
                aggregate_id=row.id,
                payload={"kind": self.kind, "taskId": row.task_id, "reason": reason},
                request_id=call.request_id,
            )
        call.request.app[SCHEDULER_KEY].wake()
        return now

    async def retry(self, call: Any, work_id: str) -> str:
        """A new manual run of the failed run's task; its id."""
        call.actor.require("scheduled-tasks:run")
        row = await runs.get_run(call.actor, work_id)
        if row.status != "failed":
            raise Conflict(
                f"only a failed run can be retried (this one is {row.status})",
                details={"status": row.status},
            )
        task = await ScheduledTask.get_or_none(id=row.task_id)
        if task is None:
            raise NotFound(f"the task of run {row.id!r} was deleted")
        scheduler = call.request.app[SCHEDULER_KEY]
        retried = await runs.run_now(call.actor, task, call.request_id, scheduler.clock())
        scheduler.wake()
        return retried.id

    async def dead_letter(self, call: Any, work_id: str, reason: str) -> datetime:
        """Refused: a failed run is history; its task runs again on its schedule."""
        _ = await runs.get_run(call.actor, work_id)
        raise Conflict(
            "task runs are not dead-lettered: a failed run stays failed in the history, and "
            "its task runs again at its next slot (disable the task to stop that)",
            details={"kind": self.kind},
        )

    async def mark_recovered(self, call: Any, work_id: str) -> datetime:
        """Refused: only the command's own exit status says it succeeded."""
        _ = await runs.get_run(call.actor, work_id)
        raise Conflict(
            "a task run cannot be marked recovered: retry it instead",
            details={"kind": self.kind},
        )

    async def prune(
        self, actor: Principal, before: datetime, statuses: frozenset[str], dry_run: bool
    ) -> dict[str, int]:
        """Finished runs (and their output) the caller may see, finished before ``before``."""
        wanted = [k for k, v in _STATUS.items() if v in statuses and k not in runs.ACTIVE]
        if not wanted:
            return {}
        rows = await ScheduledTaskRun.filter(
            organization_id=actor.organization_id, status__in=wanted, finished_at__lt=before
        ).values_list("id", "status", "project_id", "environment_id", "resource_id")
        chosen: list[str] = []
        counts: dict[str, int] = {}
        for run_id, status, project_id, environment_id, resource_id in rows:
            if not actor.reaches_resource(str(project_id), str(environment_id), str(resource_id)):
                continue
            chosen.append(str(run_id))
            shown = _STATUS[str(status)]
            counts[shown] = counts.get(shown, 0) + 1
        if not dry_run and chosen:
            async with in_transaction():
                await ScheduledTaskRunLog.filter(run_id__in=chosen).delete()
                await ScheduledTaskRun.filter(id__in=chosen).delete()
        return counts
