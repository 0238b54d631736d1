"""The scheduler's rules on a real database, driven by a test clock (no agent connected)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coordinator.db import close_database, models, open_database
from coordinator.db.task_models import ScheduledTask, ScheduledTaskRun
from coordinator.hub.registry import Registry
from coordinator.scheduling import TaskScheduler
from coordinator.secrets import Keyring

SLOT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class HandClock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def scheduler(tmp_path: Path, database_url: str) -> AsyncIterator[TaskScheduler]:
    await open_database(database_url)
    try:
        _ = await models.Deployment.create(
            id="dep_1", organization_id="org_1", project_id="prj_1", environment_id="env_1",
            resource_id="res_1", server_id="srv_offline", status="succeeded",
            created_at=SLOT - timedelta(days=1), artifact={"kind": "image", "image": "x"},
        )  # fmt: skip
        yield TaskScheduler(Registry(), Keyring.load_or_create(tmp_path))
    finally:
        await close_database()


async def _task(task_id: str, **fields: Any) -> ScheduledTask:
    values: dict[str, Any] = {
        "id": task_id, "organization_id": "org_1", "project_id": "prj_1",
        "environment_id": "env_1", "resource_id": "res_1", "schedule": "* * * * *",
        "timezone": "UTC", "command_intent": "true", "timeout_seconds": 60,
        "next_slot_at": SLOT, "created_at": SLOT, "updated_at": SLOT,
    }  # fmt: skip
    values.update(fields)
    return await ScheduledTask.create(**values)


async def _runs(task_id: str) -> list[ScheduledTaskRun]:
    return list(await ScheduledTaskRun.filter(task_id=task_id).order_by("id"))


async def test_a_due_slot_is_recorded_once_and_the_task_moves_on(
    scheduler: TaskScheduler,
) -> None:
    _ = await _task("tsk_a")
    scheduler.clock = HandClock(SLOT - timedelta(seconds=1))
    await scheduler.tick()
    assert await _runs("tsk_a") == []
    scheduler.clock = HandClock(SLOT + timedelta(seconds=0.2))
    await scheduler.tick()
    await scheduler.tick()
    # A crash between recording and moving on cannot happen (one transaction), but even a
    # task put back on the recorded slot fires nothing new.
    await ScheduledTask.filter(id="tsk_a").update(next_slot_at=SLOT)
    await scheduler.tick()
    (run,) = await _runs("tsk_a")
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
    (once,) = await _runs("tsk_once")
    (skip,) = await _runs("tsk_skip")
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
    forbid = await _runs("tsk_forbid")
    assert [(r.status, r.skipped_reason) for r in forbid] == [
        ("accepted", None),
        ("skipped", "concurrency-forbidden"),
    ]
    replace = await _runs("tsk_replace")
    assert [r.stop_requested_at is not None for r in replace] == [True, False]
    # Never handed to an agent: the replaced run ends at once.
    assert [r.status for r in replace] == ["failed", "accepted"]
    assert "stopped before it started" in (replace[0].failure_summary or "")
    allow = await _runs("tsk_allow")
    assert [r.status for r in allow] == ["accepted", "accepted"]


async def test_an_accepted_run_waiting_for_an_offline_agent_is_skipped_under_skip(
    scheduler: TaskScheduler,
) -> None:
    _ = await _task("tsk_wait", missed_run_policy="skip")
    clock = HandClock(SLOT + timedelta(seconds=1))
    scheduler.clock = clock
    await scheduler.tick()
    assert [r.status for r in await _runs("tsk_wait")] == ["accepted"]
    clock.now += scheduler.missed_after + timedelta(seconds=1)
    await ScheduledTask.filter(id="tsk_wait").update(status="disabled")
    await scheduler.tick()
    (run,) = await _runs("tsk_wait")
    assert (run.status, run.skipped_reason) == ("skipped", "agent-offline")
