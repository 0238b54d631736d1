"""Task runs: scheduled and one-off commands in fresh containers next to a resource."""

from pathlib import Path

from agent.features import AgentFeature
from agent.runtime import ContainerRuntime
from agent.settings import AgentSettings
from agent.tasks.feature import TaskFeature


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """Return the task-run feature (finished runs wait in ``state_dir/task-runs``)."""
    del settings
    return TaskFeature(runtime, state_dir)
