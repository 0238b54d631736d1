"""Why a task run failed (``failureCode``): the code an agent reports, the one the coordinator
derives when an older agent sends none, and the code of a run stored before codes existed."""

from dataclasses import dataclass
from typing import Final, Literal, get_args

from coordinator.db.task_models import ScheduledTaskRun
from shared.messages.tasks import TaskRunFailureCode, TaskRunResult, ending_failure_code

CODES: Final[frozenset[str]] = frozenset(get_args(TaskRunFailureCode))
# Failure summaries the coordinator writes (and older agents wrote) start with a reason code
# when one was known: ``no-running-container: ...``, ``agent-task-exec-unsupported: ...``.
_UNSUPPORTED_PREFIX: Final = "agent-task-"


@dataclass(frozen=True)
class Kind:
    """How the operator work ledger files a failure code."""

    category: Literal["runtime", "infrastructure"]
    retriable: bool


# runtime: the command or its container; infrastructure: the agent, its engine or its version.
KINDS: Final[dict[TaskRunFailureCode, Kind]] = {
    "exit-nonzero": Kind("runtime", True),
    "exit-unknown": Kind("infrastructure", True),
    "timed-out": Kind("runtime", True),
    "stopped": Kind("runtime", True),
    "start-failed": Kind("runtime", True),
    "no-running-container": Kind("runtime", True),
    "agent-lost": Kind("infrastructure", True),
    # Retrying changes nothing until the agent is upgraded.
    "agent-unsupported": Kind("infrastructure", False),
}


def of_result(result: TaskRunResult) -> TaskRunFailureCode | None:
    """The code of a reported result: the agent's own, else derived from how the run ended
    (an agent older than failure codes sends none); None for a run that succeeded."""
    if result.outcome == "succeeded":
        return None
    if result.failure_code is not None:
        return result.failure_code
    if result.ended == "start-failed" and _head(result.failure_summary) == "no-running-container":
        return "no-running-container"
    return ending_failure_code(result.ended, result.exit_code) or "exit-unknown"


def of_run(row: ScheduledTaskRun) -> TaskRunFailureCode | None:
    """The code of a stored run: its own, or for a run failed before codes were stored, the one
    its exit status and summary imply; None unless it failed."""
    if row.status != "failed":
        return None
    if row.failure_code in CODES:
        return row.failure_code  # type: ignore[return-value]
    summary = row.failure_summary or ""
    head = _head(summary)
    if summary.startswith("killed after"):
        return "timed-out"
    if summary.startswith("stopped") or "task was deleted" in summary:
        return "stopped"
    if row.exit_code not in (None, 0):
        return "exit-nonzero"
    if head == "no-running-container":
        return "no-running-container"
    if head.startswith(_UNSUPPORTED_PREFIX):
        return "agent-unsupported"
    if "lost the run" in summary:
        return "agent-lost"
    if summary.startswith("the command exited with status"):
        return "exit-unknown"
    return "start-failed"


def _head(summary: str | None) -> str:
    head = (summary or "").split(":", 1)[0]
    return head if " " not in head else ""
