"""The scheduler's rules on a real database, driven by a test clock (no agent connected)."""

from datetime import timedelta
from typing import Any

from coordinator.db.task_models import ScheduledTask
from coordinator.scheduling import TaskScheduler
from tests.scheduling_world import (
    SLOT,
    HandClock,
    runs_of,
    scheduler_fixture,  # noqa: F401  (the "scheduler" fixture)
    task_row,
)


async def _task(task_id: str, **fields: Any) -> ScheduledTask:
    return await task_row(task_id, SLOT, **fields)


async def test_a_due_slot_is_recorded_once_and_the_task_moves_on(
    scheduler: TaskScheduler,
) -> None:
    _ = await _task("tsk_a")
    scheduler.clock = HandClock(SLOT - timedelta(seconds=1))
    await scheduler.tick()
    assert await runs_of("tsk_a") == []
    scheduler.clock = HandClock(SLOT + timedelta(seconds=0.2))
    await scheduler.tick()
    await scheduler.tick()
    # A crash between recording and moving on cannot happen (one transaction), but even a
    # task put back on the recorded slot fires nothing new.
    await ScheduledTask.filter(id="tsk_a").update(next_slot_at=SLOT)
    await scheduler.tick()
    (run,) = await runs_of("tsk_a")
    assert (run.status, run.slot_at, run.trigger_kind) == ("accepted", SLOT, "scheduled")
    task = await ScheduledTask.get(id="tsk_a")
    assert task.next_slot_at == SLOT + timedelta(minutes=1)
    # The agent is offline: the run waits (run-once policy), it is not dropped.
    assert run.dispatched_at is None


async def test_missed_slots_run_once_or_are_skipped_by_policy(scheduler: TaskScheduler) -> None:
    _ = await _task("tsk_once", missed_run_policy="run-once")
    _ = await _task("tsk_skip", missed_run_policy="skip")
    # The coordinator was down for 10 minutes: only the latest missed slot counts.
    scheduler.clock = HandClock(SLOT + timedelta(minutes=10, seconds=5))
    await scheduler.tick()
    (once,) = await runs_of("tsk_once")
    (skip,) = await runs_of("tsk_skip")
    assert (once.status, once.slot_at) == ("accepted", SLOT + timedelta(minutes=10))
    assert (skip.status, skip.skipped_reason) == ("skipped", "missed-while-down")
    assert skip.slot_at == SLOT + timedelta(minutes=10)
    for task_id in ("tsk_once", "tsk_skip"):
        task = await ScheduledTask.get(id=task_id)
        assert task.next_slot_at == SLOT + timedelta(minutes=11)


async def test_forbid_skips_replace_stops_allow_overlaps(scheduler: TaskScheduler) -> None:
    for policy in ("forbid", "replace", "allow"):
        _ = await _task(f"tsk_{policy}", concurrency_policy=policy)
    clock = HandClock(SLOT + timedelta(seconds=1))
    scheduler.clock = clock
    await scheduler.tick()
    clock.now += timedelta(minutes=1)
    await scheduler.tick()
    forbid = await runs_of("tsk_forbid")
    assert [(r.status, r.skipped_reason) for r in forbid] == [
        ("accepted", None),
        ("skipped", "concurrency-forbidden"),
    ]
    replace = await runs_of("tsk_replace")
    assert [r.stop_requested_at is not None for r in replace] == [True, False]
    # Never handed to an agent: the replaced run ends at once.
    assert [r.status for r in replace] == ["failed", "accepted"]
    assert "stopped before it started" in (replace[0].failure_summary or "")
    allow = await runs_of("tsk_allow")
    assert [r.status for r in allow] == ["accepted", "accepted"]


async def test_an_accepted_run_waiting_for_an_offline_agent_is_skipped_under_skip(
    scheduler: TaskScheduler,
) -> None:
    _ = await _task("tsk_wait", missed_run_policy="skip")
    clock = HandClock(SLOT + timedelta(seconds=1))
    scheduler.clock = clock
    await scheduler.tick()
    assert [r.status for r in await runs_of("tsk_wait")] == ["accepted"]
    clock.now += scheduler.missed_after + timedelta(seconds=1)
    await ScheduledTask.filter(id="tsk_wait").update(status="disabled")
    await scheduler.tick()
    (run,) = await runs_of("tsk_wait")
    assert (run.status, run.skipped_reason) == ("skipped", "agent-offline")
