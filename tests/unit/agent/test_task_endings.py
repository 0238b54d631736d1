"""The failure code an agent reports with a run's result: implied by how the run ended, or
given by the runner when the ending alone does not say (an exec with no running container)."""

from datetime import UTC, datetime

from agent.tasks.exec_run import NO_RUNNING_CONTAINER
from agent.tasks.runner import Ending

AT = datetime(2026, 6, 1, tzinfo=UTC)


def test_the_code_follows_the_ending_unless_the_runner_gave_one() -> None:
    assert Ending("exited", 0, AT, AT, None).failure_code is None
    assert Ending("exited", 9, AT, AT, "status 9").failure_code == "exit-nonzero"
    assert Ending("exited", None, AT, AT, "no status").failure_code == "exit-unknown"
    assert Ending("timed-out", 137, AT, AT, "killed").failure_code == "timed-out"
    assert Ending("stopped", 143, AT, AT, "stopped").failure_code == "stopped"
    assert Ending("lost", None, AT, AT, "engine gone").failure_code == "agent-lost"
    assert Ending("start-failed", None, None, AT, "no image").failure_code == "start-failed"
    exec_refused = Ending("start-failed", None, None, AT, "none runs", NO_RUNNING_CONTAINER)
    assert exec_refused.failure_code == "no-running-container"
    # A code given to a run that nevertheless exited cleanly is not reported.
    assert Ending("exited", 0, AT, AT, None, "start-failed").failure_code is None
