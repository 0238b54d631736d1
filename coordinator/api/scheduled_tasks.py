"""Scheduled tasks and their runs (Appaloft paths, seed 2.25), plus one-off runs (``berth run``)."""

from dataclasses import fields
from datetime import UTC, datetime

from aiohttp import web

from coordinator.api.routing import Call, route
from coordinator.api.task_schemas import (
    ConfigureTaskRequest,
    CreateTaskRequest,
    ListRunsQuery,
    ListTasksQuery,
    RunCommandRequest,
    RunListResponse,
    RunLogEntry,
    RunLogsQuery,
    RunLogsResponse,
    RunLogStreamQuery,
    RunNowResponse,
    RunShowResponse,
    ScheduledTask,
    ShowRunQuery,
    ShowTaskQuery,
    TaskCommandResponse,
    TaskDeleteResponse,
    TaskListResponse,
    TaskResourceBody,
    TaskRun,
    TaskShowResponse,
)
from coordinator.db.task_models import ScheduledTask as TaskRow, ScheduledTaskRun
from coordinator.scheduling import SCHEDULER_KEY, definitions, failures, runs
from coordinator.scheduling.definitions import TaskFields
from coordinator.scheduling.log_stream import parse_cursor, stream_run_logs

TAG = "scheduled-tasks"


def run_view(row: ScheduledTaskRun) -> TaskRun:
    """A run as the API shows it."""
    return TaskRun.model_validate(
        {
            "runId": row.id,
            "taskId": row.task_id,
            "resourceId": row.resource_id,
            "triggerKind": row.trigger_kind,
            "status": row.status,
            "createdAt": row.created_at,
            "startedAt": row.started_at,
            "finishedAt": row.finished_at,
            "exitCode": row.exit_code,
            "failureSummary": row.failure_summary,
            "skippedReason": row.skipped_reason,
            "attempt": row.attempt,
            "slotAt": row.slot_at,
            "failureCode": failures.of_run(row),
        }
    )


def task_view(row: TaskRow, latest: ScheduledTaskRun | None) -> ScheduledTask:
    """A task as the API shows it."""
    return ScheduledTask.model_validate(
        {
            "taskId": row.id,
            "resourceId": row.resource_id,
            "schedule": row.schedule,
            "timezone": row.timezone,
            "commandIntent": row.command_intent,
            "timeoutSeconds": row.timeout_seconds,
            "retryLimit": row.retry_limit,
            "concurrencyPolicy": row.concurrency_policy,
            "missedRunPolicy": row.missed_run_policy,
            "status": row.status,
            "executionMode": row.execution_mode,
            "nextRunAt": row.next_slot_at,
            "createdAt": row.created_at,
            "updatedAt": row.updated_at,
            "latestRun": run_view(latest) if latest is not None else None,
        }
    )


async def _shown(row: TaskRow) -> ScheduledTask:
    latest = await definitions.latest_runs([row.id])
    return task_view(row, latest.get(row.id))


def _fields(body: CreateTaskRequest | ConfigureTaskRequest) -> TaskFields:
    """The task fields a create or configure body sets (None: unchanged)."""
    return TaskFields(**{field.name: getattr(body, field.name) for field in fields(TaskFields)})


@route(
    "GET",
    "/scheduled-tasks",
    summary="List scheduled tasks",
    tag=TAG,
    permission="scheduled-tasks:read",
    query=ListTasksQuery,
    response=TaskListResponse,
)
async def list_tasks(call: Call) -> TaskListResponse:
    """``scheduled-tasks.list/v1``, filtered by project, environment, resource and status."""
    query = call.query(ListTasksQuery)
    page = await definitions.listed(
        call.actor,
        project_id=query.project_id,
        environment_id=query.environment_id,
        resource_id=query.resource_id,
        status=query.status,
        cursor=query.cursor,
        limit=query.limit,
    )
    latest = await definitions.latest_runs([row.id for row in page.items])
    return TaskListResponse(
        items=[task_view(row, latest.get(row.id)) for row in page.items],
        next_cursor=page.next_cursor,
        generated_at=datetime.now(UTC),
    )


@route(
    "POST",
    "/scheduled-tasks",
    summary="Create a scheduled task for a resource (cron schedule in a time zone)",
    tag=TAG,
    permission="scheduled-tasks:write",
    body=CreateTaskRequest,
    response=TaskCommandResponse,
    status=201,
)
async def create_task(call: Call) -> TaskCommandResponse:
    """Invalid cron, unknown zone, or a resource never deployed successfully: 4xx."""
    body = call.body(CreateTaskRequest)
    row = await definitions.create(
        call.actor,
        body.resource_id,
        _fields(body),
        call.request_id,
    )
    return TaskCommandResponse(task=task_view(row, None))


@route(
    "GET",
    "/scheduled-tasks/{taskId}",
    summary="Show a scheduled task with its latest run",
    tag=TAG,
    permission="scheduled-tasks:read",
    query=ShowTaskQuery,
    response=TaskShowResponse,
)
async def show_task(call: Call) -> TaskShowResponse:
    """``scheduled-tasks.show/v1``."""
    query = call.query(ShowTaskQuery)
    row = await definitions.get_task(call.actor, call.path["taskId"], query.resource_id)
    return TaskShowResponse(task=await _shown(row), generated_at=datetime.now(UTC))


@route(
    "POST",
    "/scheduled-tasks/{taskId}",
    summary="Configure a scheduled task (schedule, command, timeout, retries, status)",
    tag=TAG,
    permission="scheduled-tasks:write",
    body=ConfigureTaskRequest,
    response=TaskCommandResponse,
)
async def configure_task(call: Call) -> TaskCommandResponse:
    """Only the fields given change."""
    body = call.body(ConfigureTaskRequest)
    row = await definitions.configure(
        call.actor,
        call.path["taskId"],
        body.resource_id,
        _fields(body),
        call.request_id,
    )
    return TaskCommandResponse(task=await _shown(row))


@route(
    "DELETE",
    "/scheduled-tasks/{taskId}",
    summary="Delete a scheduled task (its run history stays)",
    tag=TAG,
    permission="scheduled-tasks:write",
    body=TaskResourceBody,
    response=TaskDeleteResponse,
)
async def delete_task(call: Call) -> TaskDeleteResponse:
    """``scheduled-tasks.delete/v1``; a run still going is stopped."""
    body = call.body(TaskResourceBody)
    row, deleted_at = await definitions.delete(
        call.actor, call.path["taskId"], body.resource_id, call.request_id
    )
    call.request.app[SCHEDULER_KEY].wake()
    return TaskDeleteResponse(task_id=row.id, resource_id=row.resource_id, deleted_at=deleted_at)


@route(
    "POST",
    "/scheduled-tasks/{taskId}/runs",
    summary="Run a scheduled task now (answers before the run completes)",
    tag=TAG,
    permission="scheduled-tasks:run",
    body=TaskResourceBody,
    response=RunNowResponse,
    status=202,
)
async def run_task_now(call: Call) -> RunNowResponse:
    """``scheduled-tasks.run-now/v1``: the run is ``accepted``; follow it with its logs."""
    body = call.body(TaskResourceBody)
    task = await definitions.get_task(call.actor, call.path["taskId"], body.resource_id)
    run = await call.request.app[SCHEDULER_KEY].run_now(call.actor, task, call.request_id)
    return RunNowResponse(run=run_view(run))


@route(
    "POST",
    "/resources/{resourceId}/one-off-runs",
    summary="Run a one-off command next to a resource (``berth run``; answers at once)",
    tag=TAG,
    permission="scheduled-tasks:run",
    body=RunCommandRequest,
    response=RunNowResponse,
    status=202,
)
async def run_one_off(call: Call) -> RunNowResponse:
    """An ad-hoc task (never scheduled, not listed) with one manual run."""
    body = call.body(RunCommandRequest)
    task = await definitions.create(
        call.actor,
        call.path["resourceId"],
        TaskFields(
            command_intent=body.command_intent,
            timeout_seconds=body.timeout_seconds,
            execution_mode=body.execution_mode,
        ),
        call.request_id,
        ad_hoc=True,
    )
    run = await call.request.app[SCHEDULER_KEY].run_now(call.actor, task, call.request_id)
    return RunNowResponse(run=run_view(run))


@route(
    "GET",
    "/scheduled-task-runs",
    summary="List task runs, newest first",
    tag=TAG,
    permission="scheduled-tasks:read",
    query=ListRunsQuery,
    response=RunListResponse,
)
async def list_runs(call: Call) -> RunListResponse:
    """``scheduled-task-runs.list/v1``."""
    query = call.query(ListRunsQuery)
    page = await runs.listed(
        call.actor,
        task_id=query.task_id,
        resource_id=query.resource_id,
        status=query.status,
        trigger_kind=query.trigger_kind,
        cursor=query.cursor,
        limit=query.limit,
    )
    return RunListResponse(
        items=[run_view(row) for row in page.items],
        next_cursor=page.next_cursor,
        generated_at=datetime.now(UTC),
    )


@route(
    "GET",
    "/scheduled-task-runs/{runId}",
    summary="Show a task run",
    tag=TAG,
    permission="scheduled-tasks:read",
    query=ShowRunQuery,
    response=RunShowResponse,
)
async def show_run(call: Call) -> RunShowResponse:
    """``scheduled-task-runs.show/v1``."""
    query = call.query(ShowRunQuery)
    row = await runs.get_run(call.actor, call.path["runId"], query.task_id, query.resource_id)
    return RunShowResponse(run=run_view(row), generated_at=datetime.now(UTC))


@route(
    "GET",
    "/scheduled-task-runs/{runId}/logs",
    summary="A task run's output (kept apart from deployment and runtime logs)",
    tag=TAG,
    permission="scheduled-tasks:read",
    query=RunLogsQuery,
    response=RunLogsResponse,
)
async def run_logs(call: Call) -> RunLogsResponse:
    """``scheduled-task-runs.logs/v1``; pass ``nextCursor`` back to read on."""
    query = call.query(RunLogsQuery)
    row = await runs.get_run(call.actor, call.path["runId"], query.task_id, query.resource_id)
    after = int(query.cursor or 0)
    lines = await runs.log_page(row, after, query.limit)
    return RunLogsResponse(
        run_id=row.id,
        task_id=row.task_id,
        resource_id=row.resource_id,
        entries=[
            RunLogEntry.model_validate(
                {
                    "timestamp": line.timestamp,
                    "stream": line.stream,
                    "message": line.message,
                    "sequence": line.sequence,
                }
            )
            for line in lines
        ],
        next_cursor=str(lines[-1].sequence if lines else after) if lines or after else None,
        run_status=row.status,  # type: ignore[arg-type]
        exit_code=row.exit_code,
        generated_at=datetime.now(UTC),
    )


@route(
    "GET",
    "/scheduled-task-runs/{runId}/logs/stream",
    summary="A task run's output as server-sent events, until the run ends (resumable)",
    tag=TAG,
    permission="scheduled-tasks:read",
    query=RunLogStreamQuery,
    raw_response="text/event-stream",
    events=("task-run-log", "end"),
)
async def run_logs_stream(call: Call) -> web.StreamResponse:
    """SSE: ``id: <sequence>``, ``event: task-run-log``; ``event: end`` once the run is over.
    Resume with ``cursor`` or ``Last-Event-ID``."""
    query = call.query(RunLogStreamQuery)
    row = await runs.get_run(call.actor, call.path["runId"], query.task_id, query.resource_id)
    resume = query.cursor if query.cursor is not None else call.request.headers.get("Last-Event-ID")
    return await stream_run_logs(
        call.request,
        row.id,
        after=parse_cursor(resume),
        until_finished=query.until_finished,
        notifier=call.request.app[SCHEDULER_KEY].log_notifier,
    )
