"""Task runs: the coordinator hands one run of a scheduled or one-off task to the agent, which
runs it in a fresh container, streams its output, and reports the result until acknowledged
(a run that ends while the link is down is reported on the next link)."""

from datetime import datetime
from typing import Literal

from shared.messages.deploy import VolumeMount
from shared.messages.typeset import message_types
from shared.wire import Field, WireModel

TASKS_CAPABILITY = "tasks.v1"
"""Advertised by agents that serve ``task_run_start``."""
TASKS_DATA_CAPABILITY = "tasks.data.v1"
"""Advertised by agents that give a run its ``mounts`` and ``networks``: an older agent would
ignore them and run the command without the resource's data, so it is never sent such a run."""

TASKS_EXEC_CAPABILITY = "tasks.exec.v1"
"""Advertised by agents that honour ``executionMode: exec`` (docker exec in the resource's
running container): an older agent would start a fresh container instead, so it is never sent
such a run."""
TaskExecutionMode = Literal["fresh-container", "exec"]

TaskRunStream = Literal["stdout", "stderr"]
TaskRunOutcome = Literal["succeeded", "failed"]
TaskRunEnd = Literal["exited", "timed-out", "stopped", "start-failed", "lost"]
TaskRunFailureCode = Literal[
    "exit-nonzero",
    "exit-unknown",
    "timed-out",
    "stopped",
    "start-failed",
    "no-running-container",
    "agent-lost",
    "agent-unsupported",
]
"""Why a run failed (``failureCode``): ``exit-nonzero`` the command exited with a status other
than 0; ``exit-unknown`` it ended but the engine reported no status; ``timed-out`` killed at its
timeout; ``stopped`` replaced by a newer run, canceled, or its task deleted; ``start-failed`` its
container (image, mounts, networks) or exec could not be created or started;
``no-running-container`` an exec run with no running container of the resource;
``agent-lost`` the agent or its engine lost the run (it restarted mid-run);
``agent-unsupported`` the server's agent is too old for the run (upgrade it)."""


def ending_failure_code(ended: TaskRunEnd, exit_code: int | None) -> TaskRunFailureCode | None:
    """The failure code an ending implies (None for a clean exit with status 0); a sender that
    knows more (``no-running-container``) says so itself."""
    match ended:
        case "exited":
            if exit_code == 0:
                return None
            return "exit-unknown" if exit_code is None else "exit-nonzero"
        case "lost":
            return "agent-lost"
        case _:
            return ended


class TaskContainer(WireModel):
    """What the run's container gets: the deployment's image, runtime variables (decrypted
    secrets: this only travels the link; bound dependencies' variables included), and the
    storage volumes and dependency networks that deployment's containers use."""

    image: str = Field(min_length=1, max_length=512)
    command: str = Field(min_length=1, max_length=4000, description="run with /bin/sh -c")
    environment: dict[str, str] = Field(default_factory=dict)
    secret_keys: list[str] = Field(default_factory=list, description="keys to mask in output")
    networks: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="extra Docker networks to join (bound dependency resources'); older "
        "coordinators omit it",
    )
    mounts: list[VolumeMount] = Field(
        default_factory=list,
        max_length=50,
        description="storage volumes, checked by the agent as for a deployment; older "
        "coordinators omit it",
    )


class TaskRunStart(WireModel):
    """Coordinator -> agent request: start one run (answered by ``task_run_accepted``)."""

    type: Literal["task_run_start"] = "task_run_start"
    id: int
    run_id: str = Field(max_length=40)
    task_id: str = Field(max_length=40)
    resource_id: str = Field(max_length=40)
    deployment_id: str = Field(max_length=40)
    timeout_seconds: int = Field(gt=0, le=86_400)
    container: TaskContainer
    execution_mode: TaskExecutionMode = Field(
        default="fresh-container",
        description="exec: run in the resource's running container (the deployment's, else "
        "the newest running one); older coordinators omit it",
    )


class TaskRunAccepted(WireModel):
    """Agent -> coordinator reply to ``task_run_start`` (``alreadyKnown`` on a resend)."""

    type: Literal["task_run_accepted"] = "task_run_accepted"
    id: int
    re: int
    run_id: str = Field(max_length=40)
    already_known: bool = False


class TaskRunStop(WireModel):
    """Coordinator -> agent request: stop a run (``replace``, or a deleted task)."""

    type: Literal["task_run_stop"] = "task_run_stop"
    id: int
    run_id: str = Field(max_length=40)


class TaskRunStopAck(WireModel):
    """Agent -> coordinator reply to ``task_run_stop``."""

    type: Literal["task_run_stop_ack"] = "task_run_stop_ack"
    id: int
    re: int
    run_id: str = Field(max_length=40)
    state: Literal["stopping", "finished", "unknown"]


class TaskRunLine(WireModel):
    """One output line, numbered from 1 per run (a replay resends the same numbers)."""

    sequence: int = Field(ge=1)
    timestamp: datetime
    stream: TaskRunStream
    message: str = Field(max_length=16_384)


class TaskRunStarted(WireModel):
    """Agent -> coordinator, unsolicited: the run's container is running."""

    type: Literal["task_run_started"] = "task_run_started"
    id: int
    run_id: str = Field(max_length=40)
    container_id: str = Field(max_length=80)
    started_at: datetime


class TaskRunOutput(WireModel):
    """Agent -> coordinator, unsolicited: output lines of a run, in order."""

    type: Literal["task_run_output"] = "task_run_output"
    id: int
    run_id: str = Field(max_length=40)
    lines: list[TaskRunLine] = Field(max_length=500)


class TaskRunResult(WireModel):
    """Agent -> coordinator, unsolicited: how a run ended; resent on every link until acked."""

    type: Literal["task_run_result"] = "task_run_result"
    id: int
    run_id: str = Field(max_length=40)
    outcome: TaskRunOutcome
    ended: TaskRunEnd
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime
    failure_summary: str | None = Field(default=None, max_length=2000)
    line_count: int = Field(default=0, ge=0)
    failure_code: TaskRunFailureCode | None = Field(
        default=None,
        description="why a failed run failed; older agents omit it (the coordinator derives "
        "it from ``ended`` and ``exitCode``)",
    )


class TaskRunResultAck(WireModel):
    """Coordinator -> agent: the result is stored; the agent forgets the run."""

    type: Literal["task_run_result_ack"] = "task_run_result_ack"
    id: int
    run_id: str = Field(max_length=40)


class TaskRunInventory(WireModel):
    """Agent -> coordinator, unsolicited, on each link: the runs the agent knows (running, or
    finished with a result not yet acked). A run the coordinator dispatched earlier and the
    agent does not know was lost (the agent restarted mid-run)."""

    type: Literal["task_run_inventory"] = "task_run_inventory"
    id: int
    run_ids: list[str] = Field(max_length=5000)


TasksAgentMessage = (
    TaskRunAccepted
    | TaskRunStopAck
    | TaskRunStarted
    | TaskRunOutput
    | TaskRunResult
    | TaskRunInventory
)
TasksCoordinatorMessage = TaskRunStart | TaskRunStop | TaskRunResultAck
TASKS_AGENT_TYPES = message_types(TasksAgentMessage)
TASKS_COORDINATOR_TYPES = message_types(TasksCoordinatorMessage)
