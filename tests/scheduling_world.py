"""What the scheduler's database tests share: a clock the test moves, a scheduler on a real
database with one succeeded deployment (its agent offline), and task rows."""

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


@pytest.fixture(name="scheduler")
async def scheduler_fixture(tmp_path: Path, database_url: str) -> AsyncIterator[TaskScheduler]:
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


async def task_row(task_id: str, changed_at: datetime, **fields: Any) -> ScheduledTask:
    """An enabled every-minute task of ``res_1`` due at ``SLOT``, last changed at ``changed_at``."""
    values: dict[str, Any] = {
        "id": task_id, "organization_id": "org_1", "project_id": "prj_1",
        "environment_id": "env_1", "resource_id": "res_1", "schedule": "* * * * *",
        "timezone": "UTC", "command_intent": "true", "timeout_seconds": 60,
        "next_slot_at": SLOT, "created_at": changed_at, "updated_at": changed_at,
    }  # fmt: skip
    values.update(fields)
    return await ScheduledTask.create(**values)


async def runs_of(task_id: str) -> list[ScheduledTaskRun]:
    """The task's runs, oldest first."""
    return list(await ScheduledTaskRun.filter(task_id=task_id).order_by("id"))
