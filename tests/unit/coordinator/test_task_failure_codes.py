"""``failureCode`` of failed task runs: what an ending implies, what the coordinator derives for
an older agent's result, what a run stored before codes existed reads as, how the scheduler
stores it (real SQLite) and how the operator work ledger files it."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest

from coordinator.db import close_database, open_database
from coordinator.db.task_models import ScheduledTask, ScheduledTaskRun
from coordinator.operator_work.task_run_work import item
from coordinator.scheduling import failures, runs
from shared.messages.tasks import (
    TaskRunEnd,
    TaskRunFailureCode,
    TaskRunResult,
    ending_failure_code,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ended", "exit_code", "code"),
    [
        ("exited", 0, None),
        ("exited", 3, "exit-nonzero"),
        ("exited", -1, "exit-nonzero"),
        ("exited", None, "exit-unknown"),
        ("timed-out", 137, "timed-out"),
        ("timed-out", None, "timed-out"),
        ("stopped", 143, "stopped"),
        ("start-failed", None, "start-failed"),
        ("lost", None, "agent-lost"),
    ],
)
def test_an_ending_implies_its_code(
    ended: TaskRunEnd, exit_code: int | None, code: TaskRunFailureCode | None
) -> None:
    assert ending_failure_code(ended, exit_code) == code


def _result(**fields: Any) -> TaskRunResult:
    values: dict[str, Any] = {"id": 1, "run_id": "tkr_1", "finished_at": NOW}
    values.update(fields)
    return TaskRunResult.model_validate(values)


def test_an_older_agents_result_gets_a_code_from_how_it_ended() -> None:
    # Frames as an agent from before failure codes sends them (no failureCode field).
    old = [
        (_result(outcome="failed", ended="exited", exit_code=2), "exit-nonzero"),
        (_result(outcome="failed", ended="exited", exit_code=None), "exit-unknown"),
        (_result(outcome="failed", ended="timed-out", exit_code=137), "timed-out"),
        (_result(outcome="failed", ended="stopped"), "stopped"),
        (_result(outcome="failed", ended="lost"), "agent-lost"),
        (
            _result(
                outcome="failed",
                ended="start-failed",
                failure_summary="the container did not start: no such image",
            ),
            "start-failed",
        ),
        (
            _result(
                outcome="failed",
                ended="start-failed",
                failure_summary="no-running-container: resource res_1 has no running container",
            ),
            "no-running-container",
        ),
        (_result(outcome="succeeded", ended="exited", exit_code=0), None),
    ]
    for result, code in old:
        assert result.failure_code is None
        assert failures.of_result(result) == code, result


def test_the_agents_own_code_wins_and_unknown_codes_are_refused() -> None:
    result = _result(outcome="failed", ended="start-failed", failure_code="no-running-container")
    assert failures.of_result(result) == "no-running-container"
    on_wire = result.model_dump(mode="json", by_alias=True)
    assert on_wire["failureCode"] == "no-running-container"
    with pytest.raises(ValueError, match=r"failure_?[cC]ode"):
        _ = _result(outcome="failed", ended="exited", exit_code=1, failure_code="exploded")


def test_every_code_is_filed_by_the_ledger() -> None:
    assert set(failures.KINDS) == failures.CODES == set(get_args(TaskRunFailureCode))


def _row(**fields: Any) -> ScheduledTaskRun:
    values: dict[str, Any] = {
        "id": "tkr_1", "organization_id": "org_1", "project_id": "prj_1",
        "environment_id": "env_1", "task_id": "tsk_1", "resource_id": "res_1",
        "trigger_kind": "manual", "slot_key": "manual:tkr_1", "status": "failed",
        "not_before": NOW, "created_at": NOW, "finished_at": NOW,
    }  # fmt: skip
    values.update(fields)
    return ScheduledTaskRun(**values)


@pytest.mark.parametrize(
    ("summary", "exit_code", "code"),
    [
        ("killed after the 5 s timeout", 137, "timed-out"),
        ("stopped (replaced by a newer run, or the task was deleted)", 143, "stopped"),
        ("stopped before it started (replaced, or its task deleted)", None, "stopped"),
        ("its task was deleted before it started", None, "stopped"),
        ("the command exited with status 4", 4, "exit-nonzero"),
        ("the command exited with status None", None, "exit-unknown"),
        ("no-running-container: resource res_1 has none", None, "no-running-container"),
        ("agent-task-exec-unsupported: upgrade it", None, "agent-unsupported"),
        ("agent-task-data-unsupported: upgrade it", None, "agent-unsupported"),
        ("the agent lost the run (it restarted while the run was going)", None, "agent-lost"),
        ("the engine lost the run: connection reset", None, "agent-lost"),
        ("bind-mount-not-allowed: /etc is outside the roots", None, "start-failed"),
        ("the container did not start: no such image", None, "start-failed"),
    ],
)
def test_a_run_failed_before_codes_were_stored_reads_with_one(
    summary: str, exit_code: int | None, code: TaskRunFailureCode
) -> None:
    assert failures.of_run(_row(failure_summary=summary, exit_code=exit_code)) == code


def test_a_stored_code_is_read_back_and_only_failed_runs_have_one() -> None:
    assert failures.of_run(_row(failure_code="timed-out", exit_code=3)) == "timed-out"
    assert failures.of_run(_row(status="succeeded", exit_code=0)) is None
    assert failures.of_run(_row(status="skipped", skipped_reason="agent-offline")) is None
    assert failures.of_run(_row(status="running")) is None


def test_the_ledger_files_a_run_by_its_code() -> None:
    crashed = item(_row(failure_code="exit-nonzero", exit_code=1), NOW)
    assert (crashed.error_code, crashed.error_category, crashed.retriable) == (
        "exit-nonzero",
        "runtime",
        True,
    )
    assert crashed.next_actions == ["retry"]
    lost = item(_row(failure_code="agent-lost"), NOW)
    assert (lost.error_code, lost.error_category, lost.retriable) == (
        "agent-lost",
        "infrastructure",
        True,
    )
    old_agent = item(_row(failure_code="agent-unsupported"), NOW)
    assert (old_agent.error_category, old_agent.retriable, old_agent.next_actions) == (
        "infrastructure",
        False,
        [],
    )
    fine = item(_row(status="succeeded", exit_code=0), NOW)
    assert (fine.error_code, fine.error_category, fine.retriable) == (None, None, False)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[None]:
    await open_database(database_url)
    try:
        yield
    finally:
        await close_database()


async def _dispatched(run_id: str) -> ScheduledTaskRun:
    return await ScheduledTaskRun.create(
        id=run_id, organization_id="org_1", project_id="prj_1", environment_id="env_1",
        task_id="tsk_1", resource_id="res_1", server_id="srv_1", trigger_kind="manual",
        slot_key=f"manual:{run_id}", status="running", not_before=NOW, created_at=NOW,
        dispatched_at=NOW,
    )  # fmt: skip


async def test_a_result_is_stored_with_its_code_derived_or_reported(database: None) -> None:
    _ = await ScheduledTask.create(
        id="tsk_1", organization_id="org_1", project_id="prj_1", environment_id="env_1",
        resource_id="res_1", schedule="* * * * *", command_intent="false", timeout_seconds=5,
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    for run_id in ("tkr_old", "tkr_new", "tkr_ok"):
        _ = await _dispatched(run_id)
    later = NOW + timedelta(seconds=3)
    older_agent = _result(
        run_id="tkr_old", outcome="failed", ended="timed-out", exit_code=137, finished_at=later
    )
    newer_agent = _result(
        run_id="tkr_new",
        outcome="failed",
        ended="start-failed",
        failure_code="no-running-container",
        failure_summary="no-running-container: none",
        finished_at=later,
    )
    clean = _result(run_id="tkr_ok", outcome="succeeded", ended="exited", exit_code=0)
    for result in (older_agent, newer_agent, clean):
        done = await runs.finish("srv_1", result, 10.0, later)
        assert done.stored
    stored = {r.id: r.failure_code for r in await ScheduledTaskRun.all()}
    assert stored == {"tkr_old": "timed-out", "tkr_new": "no-running-container", "tkr_ok": None}
    # A replayed result changes nothing.
    replay = _result(run_id="tkr_old", outcome="failed", ended="exited", exit_code=1)
    assert not (await runs.finish("srv_1", replay, 10.0, later)).stored
    assert (await ScheduledTaskRun.get(id="tkr_old")).failure_code == "timed-out"
