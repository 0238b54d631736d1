"""Recording due slots: each due task's run (or its skip) is written before it is dispatched,
unique per task, slot and attempt, and the task's next slot moves on in the same transaction.

With thousands of tasks due in the same minute this is the scheduler's hot path (issue 19's
benchmark: 10,000 due at once). Profiled, most of a tick went to building ORM objects: one
``ScheduledTask`` per due row (datetime parsing, field validation) and one ``ScheduledTaskRun``
per new run. Due tasks are therefore read as plain rows (``DueTask``) and runs inserted with the
ORM's own prepared INSERT of that table and its fields' own conversions (``execute_many``), so
the SQL and the stored values are exactly what ``bulk_create`` writes, without the objects.
"""

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final

from tortoise.exceptions import IntegrityError
from tortoise.fields import DatetimeField
from tortoise.transactions import in_transaction

from coordinator.db.task_models import ScheduledTask, ScheduledTaskRun
from coordinator.ids import new_id
from coordinator.scheduling.runs import ACTIVE


@dataclass(frozen=True)
class DueTask:
    """What the scheduler needs of a due task (a plain row, not an ORM object)."""

    id: str
    organization_id: str
    project_id: str
    environment_id: str
    resource_id: str
    schedule: str
    timezone: str
    next_slot_at: datetime | None
    missed_run_policy: str
    concurrency_policy: str


_DUE_FIELDS: Final = tuple(f.name for f in fields(DueTask))


@dataclass(frozen=True)
class SlotPlan:
    """What one due task gets: the run of ``slot_at`` (or its skip) and its next slot."""

    task: DueTask
    slot_at: datetime
    following: datetime
    skipped_reason: str | None = None
    replaces_active: bool = False


async def due_tasks(now: datetime, limit: int) -> list[DueTask]:
    """Enabled scheduled tasks whose next slot is at or before ``now``, soonest first."""
    rows = (
        await ScheduledTask.filter(status="enabled", ad_hoc=False, next_slot_at__lte=now)
        .order_by("next_slot_at")
        .limit(limit)
        .values_list(*_DUE_FIELDS)
    )
    # In ``datetime.UTC``: the database's own UTC zone object makes every comparison with the
    # scheduler's clock (and every slot cache key) take the slow mixed-zone path.
    return [_due(row) for row in rows]


def _due(row: tuple[Any, ...]) -> DueTask:
    values = dict(zip(_DUE_FIELDS, row, strict=True))
    slot = values["next_slot_at"]
    values["next_slot_at"] = slot.astimezone(UTC) if slot is not None else None
    return DueTask(**values)


async def tasks_at_slot(slot_at: datetime, changed_before: datetime) -> list[DueTask]:
    """Enabled scheduled tasks whose next slot is exactly ``slot_at`` and that were last changed
    before ``changed_before`` (what a look-ahead may plan for ahead of the slot)."""
    rows = await _at_slot(slot_at, changed_before).values_list(*_DUE_FIELDS)
    return [_due(row) for row in rows]


async def still_at_slot(slot_at: datetime, changed_before: datetime) -> set[str]:
    """Ids of the tasks ``tasks_at_slot`` would return now: only ids, so nothing is parsed."""
    found = await _at_slot(slot_at, changed_before).values_list("id", flat=True)
    return {str(task_id) for task_id in found}


def _at_slot(slot_at: datetime, changed_before: datetime) -> Any:
    return ScheduledTask.filter(
        status="enabled", ad_hoc=False, next_slot_at=slot_at, updated_at__lt=changed_before
    )


async def busy_tasks(task_ids: list[str] | None = None) -> set[str]:
    """Tasks with a run accepted or running: those of ``task_ids``, or every one (one query)."""
    active = ScheduledTaskRun.filter(status__in=ACTIVE)
    if task_ids is not None:
        active = active.filter(task_id__in=task_ids)
    found = await active.values_list("task_id", flat=True)
    return {str(task_id) for task_id in found}


def _slot_values(plan: SlotPlan, now: datetime) -> dict[str, Any]:
    task = plan.task
    return {
        "id": new_id("tkr"),
        "organization_id": task.organization_id,
        "project_id": task.project_id,
        "environment_id": task.environment_id,
        "task_id": task.id,
        "resource_id": task.resource_id,
        "server_id": None,
        "deployment_id": None,
        "trigger_kind": "scheduled",
        "slot_key": plan.slot_at.astimezone(UTC).isoformat(),
        "slot_at": plan.slot_at,
        "attempt": 0,
        "status": "skipped" if plan.skipped_reason else "accepted",
        "skipped_reason": plan.skipped_reason,
        "not_before": now,
        "dispatched_at": None,
        "stop_requested_at": None,
        "created_at": now,
        "started_at": None,
        "finished_at": now if plan.skipped_reason else None,
        "exit_code": None,
        "failure_summary": None,
        "failure_code": None,
        "log_count": 0,
    }


async def _insert_runs(values: list[dict[str, Any]]) -> None:
    """``bulk_create`` of these rows without building a model object per row."""
    if not values:
        return
    meta = ScheduledTaskRun._meta
    db = meta.db  # the transaction's connection inside ``in_transaction``
    executor = db.executor_class(model=ScheduledTaskRun, db=db)
    # The primary key is set by us (not generated): the "all columns" statement includes it.
    columns = executor.regular_columns_all
    # Only the date-times need the field's conversion (the backend's text or timestamp form);
    # the other values are already the strings and integers the columns hold. Rows recorded
    # together share their slot and their stamp, so each distinct date-time is converted once.
    timed = [
        i for i, name in enumerate(columns) if isinstance(meta.fields_map[name], DatetimeField)
    ]
    convert = meta.fields_map["created_at"].to_db_value
    converted: dict[datetime, Any] = {}
    rows: list[list[Any]] = []
    for named in values:
        row = [named[name] for name in columns]
        for i in timed:
            value = row[i]
            if value is not None:
                if value not in converted:
                    converted[value] = convert(value, ScheduledTaskRun)
                row[i] = converted[value]
        rows.append(row)
    await db.execute_many(executor.insert_query_all, rows)


async def _move_on(plans: list[SlotPlan]) -> None:
    """Each plan's task to its following slot: the ORM's own prepared by-key UPDATE, once per
    row (building ``id IN (...)`` of a thousand ids cost more than the statements)."""
    meta = ScheduledTask._meta
    db = meta.db
    executor = db.executor_class(model=ScheduledTask, db=db)
    convert = meta.fields_map["next_slot_at"].to_db_value
    converted: dict[datetime, Any] = {}
    rows: list[list[Any]] = []
    for plan in plans:
        if plan.following not in converted:
            converted[plan.following] = convert(plan.following, ScheduledTask)
        rows.append([converted[plan.following], plan.task.id])
    await db.execute_many(executor.get_update_sql(["next_slot_at"], None), rows)


async def record_slots(plans: list[SlotPlan], now: datetime) -> int:
    """Write each plan's run (``accepted``, or ``skipped`` with its reason) and move its task
    to the next slot, in one transaction per batch: the run exists before dispatch (so a
    restart never sees a slot as due that already has its run); a slot recorded before (a
    tick cut short by a crash, another coordinator) only moves on. Returns runs recorded."""
    if not plans:
        return 0
    # No look-up of runs recorded before: the transaction that records a slot's runs also moves
    # their tasks on, so after a crash they are not due again; only a second coordinator
    # racing this one can collide, and the unique key then sends the batch one by one.
    try:
        async with in_transaction():
            fresh = plans
            replacing = [p.task.id for p in fresh if p.replaces_active]
            if replacing:  # before the new runs exist, so only the old ones are stopped
                await ScheduledTaskRun.filter(
                    task_id__in=replacing, status__in=ACTIVE, stop_requested_at=None
                ).update(stop_requested_at=now)
            await _insert_runs([_slot_values(p, now) for p in fresh])
            await _move_on(plans)
    except IntegrityError:
        # Another coordinator recorded one of them meanwhile: one by one, each on its own.
        return sum([await _record_one(plan, now) for plan in plans])
    return len(fresh)


async def _record_one(plan: SlotPlan, now: datetime) -> int:
    try:
        async with in_transaction():
            _ = await ScheduledTaskRun.create(**_slot_values(plan, now))
            await ScheduledTask.filter(id=plan.task.id).update(next_slot_at=plan.following)
    except IntegrityError:
        await ScheduledTask.filter(id=plan.task.id).update(next_slot_at=plan.following)
        return 0
    return 1
