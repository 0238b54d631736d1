"""Request and response models of the scheduled-task routes (Appaloft shapes, seed 2.25)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from coordinator.api.schemas import ApiRequest
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.messages.tasks import TaskRunFailureCode
from shared.wire import WireModel

ConcurrencyPolicy = Literal["forbid", "allow", "replace"]
MissedRunPolicy = Literal["run-once", "skip"]
TaskStatus = Literal["enabled", "disabled"]
TriggerKind = Literal["manual", "scheduled"]
RunStatus = Literal["accepted", "running", "succeeded", "failed", "skipped"]
SkippedReason = Literal[
    "concurrency-forbidden", "missed-while-down", "agent-offline", "no-deployment"
]
LogStream = Literal["stdout", "stderr"]
ExecutionMode = Literal["fresh-container", "exec"]
_MODE_HELP = (
    "fresh-container: a new container from the deployment's image; exec: docker "
    "exec in the resource's running container (the run fails with no-running-container when "
    "none runs)"
)

_Id = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
_OptionalId = Field(default=None, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
_Schedule = Field(min_length=1, max_length=200, description="5 cron fields or an @alias")
_Timezone = Field(min_length=1, max_length=64, description="IANA time zone, e.g. Europe/Paris")
_Command = Field(min_length=1, max_length=4000, description="run with /bin/sh -c")
_Timeout = Field(gt=0, le=86_400, description="the run is killed after this many seconds")
_Retries = Field(ge=0, le=10, description="failed runs are retried with exponential backoff")


class CreateTaskRequest(ApiRequest):
    """``POST /scheduled-tasks``."""

    resource_id: str = _Id
    schedule: str = _Schedule
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    command_intent: str = _Command
    timeout_seconds: int = Field(default=3600, gt=0, le=86_400)
    retry_limit: int = Field(default=0, ge=0, le=10)
    concurrency_policy: ConcurrencyPolicy = "forbid"
    missed_run_policy: MissedRunPolicy = Field(
        default="run-once",
        description="slots missed while the coordinator was down: run once on recovery, or skip",
    )
    status: TaskStatus = "enabled"
    execution_mode: ExecutionMode = Field(default="fresh-container", description=_MODE_HELP)


class ConfigureTaskRequest(ApiRequest):
    """``POST /scheduled-tasks/{taskId}``: the fields given change; ``resourceId`` must match."""

    resource_id: str | None = _OptionalId
    schedule: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    command_intent: str | None = Field(default=None, min_length=1, max_length=4000)
    timeout_seconds: int | None = Field(default=None, gt=0, le=86_400)
    retry_limit: int | None = Field(default=None, ge=0, le=10)
    concurrency_policy: ConcurrencyPolicy | None = None
    missed_run_policy: MissedRunPolicy | None = None
    status: TaskStatus | None = None
    execution_mode: ExecutionMode | None = None


class TaskResourceBody(ApiRequest):
    """Delete and run-now bodies: an optional ``resourceId`` that must match the task's."""

    resource_id: str | None = _OptionalId


class RunCommandRequest(ApiRequest):
    """``POST /resources/{resourceId}/task-runs``: a one-off command (``berth run``)."""

    command_intent: str = _Command
    timeout_seconds: int = Field(default=3600, gt=0, le=86_400)
    execution_mode: ExecutionMode = Field(default="fresh-container", description=_MODE_HELP)


class ListTasksQuery(ApiRequest):
    """Query of ``GET /scheduled-tasks``."""

    project_id: str | None = _OptionalId
    environment_id: str | None = _OptionalId
    resource_id: str | None = _OptionalId
    status: TaskStatus | None = None
    limit: int = Field(default=100, ge=1, le=100)
    cursor: str | None = Field(default=None, min_length=1, max_length=40)


class ShowTaskQuery(ApiRequest):
    """Query of ``GET /scheduled-tasks/{taskId}``."""

    resource_id: str | None = _OptionalId


class ListRunsQuery(ApiRequest):
    """Query of ``GET /scheduled-task-runs``."""

    task_id: str | None = _OptionalId
    resource_id: str | None = _OptionalId
    status: RunStatus | None = None
    trigger_kind: TriggerKind | None = None
    limit: int = Field(default=100, ge=1, le=100)
    cursor: str | None = Field(default=None, min_length=1, max_length=40)


class ShowRunQuery(ApiRequest):
    """Query of ``GET /scheduled-task-runs/{runId}``."""

    task_id: str | None = _OptionalId
    resource_id: str | None = _OptionalId


class RunLogStreamQuery(ApiRequest):
    """Query of ``GET /scheduled-task-runs/{runId}/logs/stream`` (``Last-Event-ID`` resumes too)."""

    task_id: str | None = _OptionalId
    resource_id: str | None = _OptionalId
    cursor: str | None = Field(default=None, min_length=1, max_length=20)
    until_finished: bool = Field(
        default=True, description="end the stream (event: end) once the run is over"
    )


class RunLogsQuery(ApiRequest):
    """Query of ``GET /scheduled-task-runs/{runId}/logs``: lines after ``cursor`` (a sequence)."""

    task_id: str | None = _OptionalId
    resource_id: str | None = _OptionalId
    cursor: str | None = Field(default=None, min_length=1, max_length=20, pattern=r"^[0-9]+$")
    limit: int = Field(default=100, ge=1, le=100)


class TaskRun(WireModel):
    """One run attempt."""

    run_id: str
    task_id: str
    resource_id: str
    trigger_kind: TriggerKind
    status: RunStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    failure_summary: str | None
    skipped_reason: SkippedReason | None
    attempt: int = Field(description="0 for the first attempt, then 1.. for retries")
    slot_at: datetime | None = Field(description="the schedule slot (UTC); null for manual runs")
    failure_code: TaskRunFailureCode | None = Field(
        default=None, description="Berth extension: why a failed run failed; null otherwise"
    )


class ScheduledTask(WireModel):
    """A task definition with its latest run."""

    task_id: str
    resource_id: str
    schedule: str
    timezone: str
    command_intent: str
    timeout_seconds: int
    retry_limit: int
    concurrency_policy: ConcurrencyPolicy
    missed_run_policy: MissedRunPolicy
    status: TaskStatus
    execution_mode: ExecutionMode
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime
    latest_run: TaskRun | None


class TaskCommandResponse(WireModel):
    """``scheduled-tasks.command/v1``."""

    schema_version: Literal["scheduled-tasks.command/v1"] = "scheduled-tasks.command/v1"
    task: ScheduledTask


class TaskShowResponse(WireModel):
    """``scheduled-tasks.show/v1``."""

    schema_version: Literal["scheduled-tasks.show/v1"] = "scheduled-tasks.show/v1"
    task: ScheduledTask
    generated_at: datetime


class TaskListResponse(WireModel):
    """``scheduled-tasks.list/v1``."""

    schema_version: Literal["scheduled-tasks.list/v1"] = "scheduled-tasks.list/v1"
    items: list[ScheduledTask]
    next_cursor: str | None
    generated_at: datetime


class TaskDeleteResponse(WireModel):
    """``scheduled-tasks.delete/v1``."""

    schema_version: Literal["scheduled-tasks.delete/v1"] = "scheduled-tasks.delete/v1"
    task_id: str
    resource_id: str
    status: Literal["deleted"] = "deleted"
    deleted_at: datetime


class RunNowResponse(WireModel):
    """``scheduled-tasks.run-now/v1``: answered before the run completes."""

    schema_version: Literal["scheduled-tasks.run-now/v1"] = "scheduled-tasks.run-now/v1"
    run: TaskRun


class RunListResponse(WireModel):
    """``scheduled-task-runs.list/v1``."""

    schema_version: Literal["scheduled-task-runs.list/v1"] = "scheduled-task-runs.list/v1"
    items: list[TaskRun]
    next_cursor: str | None
    generated_at: datetime


class RunShowResponse(WireModel):
    """``scheduled-task-runs.show/v1``."""

    schema_version: Literal["scheduled-task-runs.show/v1"] = "scheduled-task-runs.show/v1"
    run: TaskRun
    generated_at: datetime


class RunLogEntry(WireModel):
    """One output line (secrets masked)."""

    timestamp: datetime
    stream: LogStream
    message: str
    sequence: int


class RunLogsResponse(WireModel):
    """``scheduled-task-runs.logs/v1``; ``nextCursor`` continues after the last entry."""

    schema_version: Literal["scheduled-task-runs.logs/v1"] = "scheduled-task-runs.logs/v1"
    run_id: str
    task_id: str
    resource_id: str
    entries: list[RunLogEntry]
    next_cursor: str | None
    run_status: RunStatus
    exit_code: int | None
    generated_at: datetime
