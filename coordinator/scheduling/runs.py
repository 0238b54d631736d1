"""Task runs: recording a slot's run before it is dispatched (unique per task, slot and
attempt), run-now, reads and logs, and what the agent reports (start, output, result, retry)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db.task_models import ScheduledTask, ScheduledTaskRun, ScheduledTaskRunLog
from coordinator.ids import new_id
from coordinator.lookup import visible_or_404
from coordinator.paging import Page, visible_page
from coordinator.scheduling.definitions import AGGREGATE, current_deployment
from shared.errors import NotFound
from shared.messages.tasks import TaskRunLine, TaskRunResult

ACTIVE: Final = ("accepted", "running")
# Retries wait RETRY_BASE_SECONDS * 2**attempt, capped at RETRY_MAX_SECONDS.
RETRY_MAX_SECONDS: Final = 600.0


@dataclass(frozen=True)
class SlotPlan:
    """What one due task gets: the run of ``slot_at`` (or its skip) and its next slot."""

    task: ScheduledTask
    slot_at: datetime
    following: datetime
    skipped_reason: str | None = None
    replaces_active: bool = False


def _slot_run(plan: SlotPlan, now: datetime) -> ScheduledTaskRun:
    task = plan.task
    return ScheduledTaskRun(
        id=new_id("tkr"),
        organization_id=task.organization_id,
        project_id=task.project_id,
        environment_id=task.environment_id,
        task_id=task.id,
        resource_id=task.resource_id,
        trigger_kind="scheduled",
        slot_key=plan.slot_at.astimezone(UTC).isoformat(),
        slot_at=plan.slot_at,
        attempt=0,
        status="skipped" if plan.skipped_reason else "accepted",
        skipped_reason=plan.skipped_reason,
        not_before=now,
        created_at=now,
        finished_at=now if plan.skipped_reason else None,
    )


async def record_slots(plans: list[SlotPlan], now: datetime) -> int:
    """Record each plan's run and move its task to the next slot, in one transaction (so a
    restart never sees a slot as due that already has its run); a slot recorded before (a
    tick cut short by a crash, another coordinator) only moves on. Returns runs recorded."""
    if not plans:
        return 0
    keys = {(p.task.id, p.slot_at.astimezone(UTC).isoformat()) for p in plans}
    try:
        async with in_transaction():
            recorded = {
                (str(task_id), str(slot_key))
                for task_id, slot_key in await ScheduledTaskRun.filter(
                    task_id__in={task_id for task_id, _ in keys},
                    slot_key__in={slot_key for _, slot_key in keys},
                    attempt=0,
                ).values_list("task_id", "slot_key")
            }
            fresh = [
                p
                for p in plans
                if (p.task.id, p.slot_at.astimezone(UTC).isoformat()) not in recorded
            ]
            replacing = [p.task.id for p in fresh if p.replaces_active]
            if replacing:  # before the new runs exist, so only the old ones are stopped
                await ScheduledTaskRun.filter(
                    task_id__in=replacing, status__in=ACTIVE, stop_requested_at=None
                ).update(stop_requested_at=now)
            await ScheduledTaskRun.bulk_create([_slot_run(p, now) for p in fresh])
            # One UPDATE per distinct next slot (tasks due together mostly share it).
            moving: dict[datetime, list[str]] = {}
            for plan in plans:
                moving.setdefault(plan.following, []).append(plan.task.id)
            for following, task_ids in moving.items():
                await ScheduledTask.filter(id__in=task_ids).update(next_slot_at=following)
    except IntegrityError:
        # Another coordinator recorded one of them meanwhile: one by one, each on its own.
        return sum([await _record_one(plan, now) for plan in plans])
    return len(fresh)


async def _record_one(plan: SlotPlan, now: datetime) -> int:
    try:
        async with in_transaction():
            await _slot_run(plan, now).save(force_create=True)
            await ScheduledTask.filter(id=plan.task.id).update(next_slot_at=plan.following)
    except IntegrityError:
        await ScheduledTask.filter(id=plan.task.id).update(next_slot_at=plan.following)
        return 0
    return 1


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


async def finish(
    server_id: str, result: TaskRunResult, retry_base_seconds: float, now: datetime
) -> ScheduledTaskRun | None:
    """Store a result once (a replayed one changes nothing) and queue a retry if one is left.

    Returns the retry run, if one was queued.
    """
    async with in_transaction():
        run = await ScheduledTaskRun.get_or_none(id=result.run_id, server_id=server_id)
        if run is None or run.status not in ACTIVE:
            return None
        await ScheduledTaskRun.filter(id=run.id).update(
            status=result.outcome,
            exit_code=result.exit_code,
            started_at=run.started_at or result.started_at,
            finished_at=result.finished_at,
            failure_summary=result.failure_summary,
        )
        task = await ScheduledTask.get_or_none(id=run.task_id)
        if (
            result.outcome != "failed"
            or result.ended == "stopped"
            or task is None
            or run.attempt >= task.retry_limit
        ):
            return None
        delay = min(retry_base_seconds * 2**run.attempt, RETRY_MAX_SECONDS)
        try:
            return await ScheduledTaskRun.create(
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
            return None
