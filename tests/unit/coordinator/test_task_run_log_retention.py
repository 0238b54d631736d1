"""Retention of task-run logs (``scheduled-task-run-logs``): a policy removes the lines of runs
finished before its cutoff and never those of a run still going, a dry run counts exactly what
the real run removes, removals are audited, and organizations without a policy get the built-in
default (real SQLite; the last test goes through the API and the scheduled prune)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coordinator.db import close_database, models, open_database
from coordinator.db.notification_models import RetentionDefault
from coordinator.db.task_models import ScheduledTaskRun, ScheduledTaskRunLog
from coordinator.ids import new_id
from coordinator.retention import defaults, run_built_in, task_run_logs
from tests.harness import eventually, serving
from tests.unit.coordinator.support import assert_error

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)


async def _run(org: str, status: str, finished: datetime | None, lines: int) -> str:
    run_id = new_id("tkr")
    _ = await ScheduledTaskRun.create(
        id=run_id, organization_id=org, project_id="prj_1", environment_id="env_1",
        task_id="tsk_1", resource_id="res_1", server_id="srv_1", trigger_kind="manual",
        slot_key=f"manual:{run_id}", status=status, not_before=OLD, created_at=OLD,
        started_at=OLD, finished_at=finished, log_count=lines,
    )  # fmt: skip
    for n in range(1, lines + 1):
        _ = await ScheduledTaskRunLog.create(
            run_id=run_id, sequence=n, timestamp=OLD, stream="stdout", message=f"line {n}"
        )
    return run_id


async def _lines(run_id: str) -> int:
    return await ScheduledTaskRunLog.filter(run_id=run_id).count()


async def _policy(org: str, days: int, **fields: Any) -> RetentionDefault:
    return await RetentionDefault.create(
        id=new_id("rtd"), scope="organization", organization_id=org,
        category=task_run_logs.CATEGORY, retention_days=days, updated_at=NOW,
        updated_by_actor_kind="system", **fields,
    )  # fmt: skip


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[None]:
    await open_database(database_url)
    try:
        yield
    finally:
        await close_database()


async def test_a_policy_prunes_logs_of_finished_runs_only_and_a_dry_run_matches(
    database: None,
) -> None:
    succeeded = await _run("org_1", "succeeded", OLD, 3)
    failed = await _run("org_1", "failed", OLD + timedelta(hours=1), 2)
    # Started 40 days ago and still going (or waiting for its retry): its lines stay.
    running = await _run("org_1", "running", None, 2)
    waiting = await _run("org_1", "accepted", None, 1)
    recent = await _run("org_1", "failed", NOW - timedelta(hours=2), 1)
    other_org = await _run("org_2", "succeeded", OLD, 4)
    policy = await _policy("org_1", 1)

    report = await defaults.apply(policy, dry_run=True)
    assert (report["matchedCount"], report["prunedCount"], report["dryRun"]) == (5, 0, True)
    assert [await _lines(r) for r in (succeeded, failed)] == [3, 2]

    report = await defaults.apply(policy, dry_run=False)
    assert (report["matchedCount"], report["prunedCount"]) == (5, 5)
    kept = {r: await _lines(r) for r in (succeeded, failed, running, waiting, recent, other_org)}
    assert kept == {succeeded: 0, failed: 0, running: 2, waiting: 1, recent: 1, other_org: 4}
    # The runs stay (with their line count); only their output went.
    assert await ScheduledTaskRun.filter(id=succeeded, log_count=3).exists()
    stored = await RetentionDefault.get(id=policy.id)
    assert stored.last_run is not None
    assert stored.last_run["prunedCount"] == 5
    (event,) = await models.AuditEvent.filter(event_type="retention-defaults.pruned")
    assert event.organization_id == "org_1"
    assert event.payload["category"] == task_run_logs.CATEGORY
    assert event.payload["prunedCount"] == 5

    # Nothing left to remove: a second pass matches nothing and writes no audit event.
    report = await defaults.apply(policy, dry_run=False)
    assert (report["matchedCount"], report["prunedCount"]) == (0, 0)
    assert await models.AuditEvent.filter(event_type="retention-defaults.pruned").count() == 1


async def test_the_built_in_default_covers_organizations_without_a_policy(
    database: None,
) -> None:
    governed_old = await _run("org_1", "succeeded", OLD, 2)
    disabled_old = await _run("org_3", "failed", OLD, 2)
    default_old = await _run("org_2", "failed", OLD, 3)
    default_young = await _run("org_2", "succeeded", NOW - timedelta(days=10), 2)
    default_running = await _run("org_2", "running", None, 2)
    _ = await _policy("org_1", 365)
    # A policy, once set, decides, even a disabled one.
    _ = await _policy("org_3", 1, enabled=False)

    assert await run_built_in(0) == {}
    assert await ScheduledTaskRunLog.all().count() == 11

    assert await run_built_in(30) == {"org_2": 3}
    kept = {
        r: await _lines(r)
        for r in (governed_old, disabled_old, default_old, default_young, default_running)
    }
    assert kept == {
        governed_old: 2,
        disabled_old: 2,
        default_old: 0,
        default_young: 2,
        default_running: 2,
    }
    (event,) = await models.AuditEvent.filter(event_type="retention-defaults.pruned")
    assert event.organization_id == "org_2"
    assert event.payload["builtInDefault"] is True
    assert event.payload["prunedCount"] == 3
    assert await run_built_in(30) == {}


async def _organization() -> str:
    first = await models.AuditEvent.all().order_by("id").first()
    assert first is not None
    assert first.organization_id
    return first.organization_id


async def test_the_category_is_configured_through_the_api_and_the_schedule_applies_it(
    tmp_path: Path, database_url: str
) -> None:
    async with serving(
        tmp_path / "scheduled", database_url, retention_prune_interval_seconds=0.2
    ) as coordinator:
        token = await coordinator.bootstrap()
        org = await _organization()
        mine = await _run(org, "failed", OLD, 3)
        going = await _run(org, "running", None, 2)
        # Another organization without a policy: the built-in 30 days apply to it.
        theirs = await _run("org_other", "succeeded", OLD, 2)

        async def configure(**body: Any) -> dict[str, Any]:
            status, answer, _ = await coordinator.call(
                "POST",
                "/retention-defaults",
                token=token,
                json={"category": task_run_logs.CATEGORY, "retentionDays": 7, **body},
            )
            assert status == 200, answer
            return dict(answer)

        created = await configure()
        status, shown, _ = await coordinator.call(
            "GET", f"/retention-defaults/{task_run_logs.CATEGORY}", token=token
        )
        assert status == 200, shown
        assert shown["policy"]["id"] == created["id"]
        assert shown["policy"]["category"] == task_run_logs.CATEGORY
        assert shown["policy"]["destructiveSchedulingEnabled"] is False

        async def other_pruned() -> bool:
            return await _lines(theirs) == 0

        await eventually(other_pruned, what="the built-in default to prune the other org")

        async def reported() -> bool:
            status, shown, _ = await coordinator.call(
                "GET", f"/retention-defaults/{task_run_logs.CATEGORY}", token=token
            )
            assert status == 200, shown
            return shown["policy"]["lastRun"] is not None

        await eventually(reported, what="the dry-run report of task-run logs")
        status, shown, _ = await coordinator.call(
            "GET", f"/retention-defaults/{task_run_logs.CATEGORY}", token=token
        )
        assert shown["policy"]["lastRun"]["matchedCount"] == 3
        assert shown["policy"]["lastRun"]["dryRun"] is True
        # The organization has a policy (dry run only): the built-in default leaves it alone.
        assert await _lines(mine) == 3

        _ = await configure(destructiveSchedulingEnabled=True)

        async def pruned() -> bool:
            return await _lines(mine) == 0

        await eventually(pruned, what="the scheduled prune of old task-run logs")
        assert await _lines(going) == 2
        status, listed, _ = await coordinator.call(
            "GET", "/retention-defaults?category=scheduled-task-run-logs", token=token
        )
        assert status == 200, listed
        assert [i["category"] for i in listed["items"]] == [task_run_logs.CATEGORY]
        audited = await models.AuditEvent.filter(
            organization_id=org, event_type="retention-defaults.pruned"
        )
        assert [e.payload["category"] for e in audited] == [task_run_logs.CATEGORY]
        assert_error(
            await coordinator.call(
                "POST",
                "/retention-defaults",
                token=token,
                json={"category": "scheduled-task-run-log", "retentionDays": 7},
            ),
            400,
            "invalid_request",
        )
