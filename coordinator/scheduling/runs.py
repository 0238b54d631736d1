"""Task runs: run-now, reads and logs, and what the agent reports (start, output, result,
retry); slots.py records the scheduled ones."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db.task_models import ScheduledTask, ScheduledTaskRun, ScheduledTaskRunLog
from coordinator.ids import new_id
from coordinator.lookup import visible_or_404
from coordinator.paging import Page, visible_page
from coordinator.scheduling import failures
from coordinator.scheduling.definitions import AGGREGATE, current_deployment
from shared.errors import NotFound
from shared.messages.tasks import TaskRunLine, TaskRunResult

ACTIVE: Final = ("accepted", "running")
# Retries wait RETRY_BASE_SECONDS * 2**attempt, capped at RETRY_MAX_SECONDS.
RETRY_MAX_SECONDS: Final = 600.0


async def run_now(
    actor: Principal, task: ScheduledTask, request_id: str, now: datetime
) -> ScheduledTaskRun:
    """Accept one manual run (dispatched by the scheduler; the caller does not wait for it).
    ``now`` is the scheduler's clock, which decides when it may be dispatched."""
    _ = await current_deployment(task.resource_id)
    run_id = new_id("tkr")
    async with in_transaction():
        run = await ScheduledTaskRun.create(
            id=run_id,
            organization_id=task.organization_id,
            project_id=task.project_id,
            environment_id=task.environment_id,
            task_id=task.id,
            resource_id=task.resource_id,
            trigger_kind="manual",
            slot_key=f"manual:{run_id}",
            attempt=0,
            status="accepted",
            not_before=now,
            created_at=now,
        )
        await audit.record(
            actor=actor,
            event_type="task-run.requested",
            aggregate_type=AGGREGATE,
            aggregate_id=task.id,
            payload={"runId": run.id},
            request_id=request_id,
        )
    return run


async def get_run(
    actor: Principal, run_id: str, task_id: str | None = None, resource_id: str | None = None
) -> ScheduledTaskRun:
    """A run the caller may see; mismatching ``taskId``/``resourceId`` filters are a 404."""
    row = await visible_or_404(
        ScheduledTaskRun,
        "scheduled task run",
        run_id,
        lambda r: actor.can_see_resource(r.project_id, r.environment_id, r.resource_id),
        organization_id=actor.organization_id,
    )
    if (task_id is not None and row.task_id != task_id) or (
        resource_id is not None and row.resource_id != resource_id
    ):
        raise NotFound(f"scheduled task run {run_id!r} not found")
    return row


async def listed(
    actor: Principal,
    *,
    task_id: str | None,
    resource_id: str | None,
    status: str | None,
    trigger_kind: str | None,
    cursor: str | None,
    limit: int,
) -> Page[ScheduledTaskRun]:
    """Runs the caller may see, newest first (the cursor continues to older ones); a deleted
    task's runs stay listed."""
    rows = ScheduledTaskRun.filter(organization_id=actor.organization_id)
    for name, value in (
        ("task_id", task_id),
        ("resource_id", resource_id),
        ("status", status),
        ("trigger_kind", trigger_kind),
    ):
        if value is not None:
            rows = rows.filter(**{name: value})

    def visible(row: ScheduledTaskRun) -> bool:
        return actor.can_see_resource(row.project_id, row.environment_id, row.resource_id)

    return await visible_page(rows, visible, cursor, limit, newest_first=True)


async def log_page(run: ScheduledTaskRun, after: int, limit: int) -> list[ScheduledTaskRunLog]:
    """Up to ``limit`` lines after sequence ``after``."""
    return list(
        await ScheduledTaskRunLog.filter(run_id=run.id, sequence__gt=after)
        .order_by("sequence")
        .limit(limit)
    )


async def mark_started(run_id: str, server_id: str, started_at: datetime) -> None:
    """The agent started the run's container."""
    await ScheduledTaskRun.filter(id=run_id, server_id=server_id, status="accepted").update(
        status="running", started_at=started_at
    )


async def add_output(
    run_id: str, server_id: str, lines: list[TaskRunLine], masked: list[str]
) -> None:
    """Store output lines; a replayed line (same sequence) is ignored."""
    run = await ScheduledTaskRun.get_or_none(id=run_id, server_id=server_id)
    if run is None:
        return
    stored = await ScheduledTaskRunLog.filter(
        run_id=run_id, sequence__in=[line.sequence for line in lines]
    ).values_list("sequence", flat=True)
    known = {int(str(value)) for value in stored}
    fresh = [
        ScheduledTaskRunLog(
            run_id=run_id,
            sequence=line.sequence,
            timestamp=line.timestamp,
            stream=line.stream,
            message=message,
        )
        for line, message in zip(lines, masked, strict=True)
        if line.sequence not in known
    ]
    if fresh:
        await ScheduledTaskRunLog.bulk_create(fresh)
        top = max(line.sequence for line in fresh)
        await ScheduledTaskRun.filter(id=run_id, log_count__lt=top).update(log_count=top)


@dataclass(frozen=True)
class Finished:
    """What storing a result did: ``stored`` (False for a replay) and the retry it queued."""

    stored: bool
    retry: ScheduledTaskRun | None = None


async def finish(
    server_id: str, result: TaskRunResult, retry_base_seconds: float, now: datetime
) -> Finished:
    """Store a result once (a replayed one changes nothing) and queue a retry if one is left."""
    async with in_transaction():
        run = await ScheduledTaskRun.get_or_none(id=result.run_id, server_id=server_id)
        if run is None or run.status not in ACTIVE:
            return Finished(stored=False)
        await ScheduledTaskRun.filter(id=run.id).update(
            status=result.outcome,
            exit_code=result.exit_code,
            started_at=run.started_at or result.started_at,
            finished_at=result.finished_at,
            failure_summary=result.failure_summary,
            failure_code=failures.of_result(result),
        )
        task = await ScheduledTask.get_or_none(id=run.task_id)
        if (
            result.outcome != "failed"
            or result.ended == "stopped"
            or task is None
            or run.attempt >= task.retry_limit
        ):
            return Finished(stored=True)
        delay = min(retry_base_seconds * 2**run.attempt, RETRY_MAX_SECONDS)
        try:
            retry = await ScheduledTaskRun.create(
                id=new_id("tkr"),
                organization_id=run.organization_id,
                project_id=run.project_id,
                environment_id=run.environment_id,
                task_id=run.task_id,
                resource_id=run.resource_id,
                trigger_kind=run.trigger_kind,
                slot_key=run.slot_key,
                slot_at=run.slot_at,
                attempt=run.attempt + 1,
                status="accepted",
                not_before=now + timedelta(seconds=delay),
                created_at=now,
            )
        except IntegrityError:
            return Finished(stored=True)
    return Finished(stored=True, retry=retry)
