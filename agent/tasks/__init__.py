"""Task runs: scheduled and one-off commands in fresh containers next to a resource."""

from pathlib import Path

from agent.features import AgentFeature
from agent.runtime import ContainerRuntime
from agent.settings import AgentSettings
from agent.tasks.feature import TaskFeature


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """Return the task-run feature (finished runs wait in ``state_dir/task-runs``; bind mounts
    reach only the roots the agent's settings allow, as for deployments)."""
    return TaskFeature(runtime, state_dir, settings.bind_mount_roots)
