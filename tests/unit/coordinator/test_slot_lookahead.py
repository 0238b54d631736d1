"""Slots planned ahead of time: used only for tasks unchanged since, on a real database."""

from datetime import datetime, timedelta
from typing import Any

import pytest

from coordinator.db.task_models import ScheduledTask, ScheduledTaskRun
from coordinator.scheduling import TaskScheduler, slots
from coordinator.scheduling.lookahead import LOOKAHEAD
from tests.scheduling_world import (
    SLOT,
    HandClock,
    runs_of,
    scheduler_fixture,  # noqa: F401  (the "scheduler" fixture)
    task_row,
)

# Last changed well before the look-ahead reads them (changes within its margin go unplanned).
LONG_AGO = SLOT - timedelta(hours=1)


async def _task(task_id: str, **fields: Any) -> ScheduledTask:
    return await task_row(task_id, LONG_AGO, **fields)


async def _plan_ahead(scheduler: TaskScheduler) -> None:
    """What the loop does between ticks: read the soonest slot (and plan it when near)."""
    clock = HandClock(SLOT - LOOKAHEAD + timedelta(seconds=1))
    scheduler.clock = clock
    _ = await scheduler._until_next()


async def _fire(scheduler: TaskScheduler) -> None:
    scheduler.clock = HandClock(SLOT + timedelta(seconds=0.2))
    await scheduler.tick()


async def test_a_planned_slot_is_recorded_once_and_its_tasks_move_on(
    scheduler: TaskScheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        _ = await _task(f"tsk_{n}")
    await _plan_ahead(scheduler)
    # At the slot nothing is read but ids: a full read of the due rows would find none left.
    reads: list[int] = []
    original = slots.due_tasks

    async def counted(now: datetime, limit: int) -> list[slots.DueTask]:
        found = await original(now, limit)
        reads.append(len(found))
        return found

    monkeypatch.setattr(slots, "due_tasks", counted)
    await _fire(scheduler)
    assert reads == [0]
    for n in range(3):
        (run,) = await runs_of(f"tsk_{n}")
        assert (run.status, run.slot_at) == ("accepted", SLOT)
        task = await ScheduledTask.get(id=f"tsk_{n}")
        assert task.next_slot_at == SLOT + timedelta(minutes=1)
    await _fire(scheduler)  # a second tick at the same slot fires nothing new
    assert len(await ScheduledTaskRun.all()) == 3


async def test_a_task_changed_after_planning_fires_as_it_is_now(
    scheduler: TaskScheduler,
) -> None:
    _ = await _task("tsk_changed")
    _ = await _task("tsk_disabled")
    _ = await _task("tsk_deleted")
    await _plan_ahead(scheduler)
    # Changed between planning and the slot: every 5 minutes now (its next slot is still SLOT).
    await ScheduledTask.filter(id="tsk_changed").update(
        schedule="*/5 * * * *", updated_at=SLOT - timedelta(seconds=2)
    )
    await ScheduledTask.filter(id="tsk_disabled").update(status="disabled")
    await ScheduledTask.filter(id="tsk_deleted").delete()
    await _fire(scheduler)
    (run,) = await runs_of("tsk_changed")
    assert run.slot_at == SLOT
    task = await ScheduledTask.get(id="tsk_changed")
    assert task.next_slot_at == SLOT + timedelta(minutes=5)  # not the planned + 1 minute
    assert await runs_of("tsk_disabled") == []
    assert await runs_of("tsk_deleted") == []


async def test_a_task_added_after_planning_still_fires(scheduler: TaskScheduler) -> None:
    _ = await _task("tsk_planned")
    await _plan_ahead(scheduler)
    _ = await _task("tsk_new", created_at=SLOT - timedelta(seconds=2), updated_at=SLOT)
    await _fire(scheduler)
    assert [r.status for r in await runs_of("tsk_planned")] == ["accepted"]
    assert [r.status for r in await runs_of("tsk_new")] == ["accepted"]


async def test_planned_tasks_still_follow_their_concurrency_policy(
    scheduler: TaskScheduler,
) -> None:
    for policy in ("forbid", "replace", "allow"):
        _ = await _task(f"tsk_{policy}", concurrency_policy=policy)
    # Each has a run from the slot before still accepted (its agent is offline).
    scheduler.clock = HandClock(SLOT - timedelta(minutes=1) + timedelta(seconds=0.2))
    await ScheduledTask.all().update(next_slot_at=SLOT - timedelta(minutes=1))
    await scheduler.tick()
    assert len(await ScheduledTaskRun.filter(status="accepted")) == 3
    await _plan_ahead(scheduler)
    await _fire(scheduler)
    forbid = await runs_of("tsk_forbid")
    assert [(r.status, r.skipped_reason) for r in forbid] == [
        ("accepted", None),
        ("skipped", "concurrency-forbidden"),
    ]
    replace = await runs_of("tsk_replace")
    assert [r.status for r in replace] == ["failed", "accepted"]
    assert [r.status for r in await runs_of("tsk_allow")] == ["accepted", "accepted"]


async def test_a_planned_slot_found_late_follows_the_missed_run_policy(
    scheduler: TaskScheduler,
) -> None:
    _ = await _task("tsk_skip", missed_run_policy="skip")
    await _plan_ahead(scheduler)
    # The coordinator stalled past the slot by more than ``missed_after``.
    scheduler.clock = HandClock(SLOT + scheduler.missed_after + timedelta(seconds=5))
    await scheduler.tick()
    (run,) = await runs_of("tsk_skip")
    assert (run.status, run.skipped_reason) == ("skipped", "missed-while-down")
