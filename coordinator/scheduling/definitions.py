"""Scheduled task definitions: create, configure, delete, list and show, each mutation audited
in its own transaction; a task belongs to a resource the caller can see."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.db.task_models import ScheduledTask, ScheduledTaskRun
from coordinator.ids import new_id
from coordinator.lookup import get_resource, visible_or_404
from coordinator.paging import Page, visible_page
from coordinator.scheduling.cron import check_schedule, next_slot, zone
from shared.errors import Conflict, NotFound

AGGREGATE = "scheduled-task"


@dataclass(frozen=True)
class TaskFields:
    """The settable fields of a task (None: unchanged, on configure)."""

    schedule: str | None = None
    timezone: str | None = None
    command_intent: str | None = None
    timeout_seconds: int | None = None
    retry_limit: int | None = None
    concurrency_policy: str | None = None
    missed_run_policy: str | None = None
    status: str | None = None
    execution_mode: str | None = None


async def latest_deployment(resource_id: str) -> models.Deployment | None:
    """The resource's latest successful deployment (what a run takes image and variables from)."""
    return (
        await models.Deployment.filter(resource_id=resource_id, status="succeeded")
        .order_by("-created_at")
        .first()
    )


async def current_deployment(resource_id: str) -> models.Deployment:
    """``latest_deployment``; none is a 409."""
    row = await latest_deployment(resource_id)
    if row is None:
        raise Conflict(
            "the resource has no successful deployment to run tasks from; deploy it first",
            details={"resourceId": resource_id},
        )
    return row


async def get_task(actor: Principal, task_id: str, resource_id: str | None = None) -> ScheduledTask:
    """A task the caller may see (its resource's scope); a mismatching ``resourceId`` is 404."""
    row = await visible_or_404(
        ScheduledTask,
        "scheduled task",
        task_id,
        lambda r: actor.can_see_resource(r.project_id, r.environment_id, r.resource_id),
        organization_id=actor.organization_id,
    )
    if resource_id is not None and row.resource_id != resource_id:
        raise NotFound(f"scheduled task {task_id!r} not found")
    return row


async def create(
    actor: Principal, resource_id: str, fields: TaskFields, request_id: str, *, ad_hoc: bool = False
) -> ScheduledTask:
    """Validate and store a task; its first slot is computed now."""
    resource = await get_resource(actor, resource_id)
    schedule = check_schedule(fields.schedule or "@yearly")
    timezone = fields.timezone or "UTC"
    zone(timezone)
    _ = await current_deployment(resource.id)
    now = datetime.now(UTC)
    enabled = (fields.status or "enabled") == "enabled" and not ad_hoc
    first = next_slot(schedule, timezone, now)
    async with in_transaction():
        row = await ScheduledTask.create(
            id=new_id("tsk"),
            organization_id=actor.organization_id,
            project_id=resource.project_id,  # type: ignore[attr-defined]
            environment_id=resource.environment_id,  # type: ignore[attr-defined]
            resource_id=resource.id,
            schedule=schedule,
            timezone=timezone,
            command_intent=fields.command_intent or "",
            timeout_seconds=fields.timeout_seconds or 3600,
            retry_limit=fields.retry_limit or 0,
            concurrency_policy=fields.concurrency_policy or "forbid",
            missed_run_policy=fields.missed_run_policy or "run-once",
            status="enabled" if enabled or ad_hoc else "disabled",
            ad_hoc=ad_hoc,
            execution_mode=fields.execution_mode or "fresh-container",
            next_slot_at=first if enabled else None,
            created_at=now,
            updated_at=now,
        )
        await audit.record(
            actor=actor,
            event_type="scheduled-task.created" if not ad_hoc else "task-run.one-off-created",
            aggregate_type=AGGREGATE,
            aggregate_id=row.id,
            payload={"resourceId": resource.id, **_audited(row)},
            request_id=request_id,
        )
    return row


async def configure(
    actor: Principal, task_id: str, resource_id: str | None, fields: TaskFields, request_id: str
) -> ScheduledTask:
    """Change the given fields; a schedule, zone or status change recomputes the next slot."""
    row = await get_task(actor, task_id, resource_id)
    schedule = check_schedule(fields.schedule) if fields.schedule is not None else row.schedule
    timezone = fields.timezone if fields.timezone is not None else row.timezone
    zone(timezone)
    now = datetime.now(UTC)
    changes: dict[str, Any] = {
        name: value
        for name, value in vars(fields).items()
        if value is not None and name not in ("schedule", "timezone")
    }
    changes.update(schedule=schedule, timezone=timezone, updated_at=now)
    status = changes.get("status", row.status)
    if status == "enabled" and not row.ad_hoc:
        reschedule = (
            schedule != row.schedule or timezone != row.timezone or row.next_slot_at is None
        )
        changes["next_slot_at"] = (
            next_slot(schedule, timezone, now) if reschedule else row.next_slot_at
        )
    else:
        changes["next_slot_at"] = None
    async with in_transaction():
        await ScheduledTask.filter(id=row.id).update(**changes)
        await row.refresh_from_db()
        await audit.record(
            actor=actor,
            event_type="scheduled-task.configured",
            aggregate_type=AGGREGATE,
            aggregate_id=row.id,
            payload={"resourceId": row.resource_id, **_audited(row)},
            request_id=request_id,
        )
    return row


async def delete(
    actor: Principal, task_id: str, resource_id: str | None, request_id: str
) -> tuple[ScheduledTask, datetime]:
    """Delete the definition; its runs stay in history (an active run is stopped by the
    scheduler when it sees its task gone)."""
    row = await get_task(actor, task_id, resource_id)
    now = datetime.now(UTC)
    async with in_transaction():
        await ScheduledTask.filter(id=row.id).delete()
        await ScheduledTaskRun.filter(task_id=row.id, status__in=("accepted", "running")).update(
            stop_requested_at=now
        )
        await audit.record(
            actor=actor,
            event_type="scheduled-task.deleted",
            aggregate_type=AGGREGATE,
            aggregate_id=row.id,
            payload={"resourceId": row.resource_id},
            request_id=request_id,
        )
    return row, now


async def listed(
    actor: Principal,
    *,
    project_id: str | None,
    environment_id: str | None,
    resource_id: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page[ScheduledTask]:
    """Tasks the caller may see (one-off tasks left out), oldest first."""
    rows = ScheduledTask.filter(organization_id=actor.organization_id, ad_hoc=False)
    for name, value in (
        ("project_id", project_id),
        ("environment_id", environment_id),
        ("resource_id", resource_id),
        ("status", status),
    ):
        if value is not None:
            rows = rows.filter(**{name: value})

    def visible(row: ScheduledTask) -> bool:
        return actor.can_see_resource(row.project_id, row.environment_id, row.resource_id)

    return await visible_page(rows, visible, cursor, limit)


async def latest_runs(task_ids: list[str]) -> dict[str, ScheduledTaskRun]:
    """The newest run of each task."""
    latest: dict[str, ScheduledTaskRun] = {}
    if not task_ids:
        return latest
    for run in await ScheduledTaskRun.filter(task_id__in=task_ids).order_by("id"):
        latest[run.task_id] = run
    return latest


def _audited(row: ScheduledTask) -> dict[str, Any]:
    return {
        "schedule": row.schedule,
        "timezone": row.timezone,
        "commandIntent": row.command_intent,
        "timeoutSeconds": row.timeout_seconds,
        "retryLimit": row.retry_limit,
        "concurrencyPolicy": row.concurrency_policy,
        "missedRunPolicy": row.missed_run_policy,
        "status": row.status,
        "executionMode": row.execution_mode,
    }
