"""Usage sampling, the on-disk sample spool and its delivery, capacity inspection and prune."""

from pathlib import Path

from agent.features import AgentFeature
from agent.runtime import ContainerRuntime
from agent.settings import AgentSettings


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """Return the monitoring feature (None while it is not built)."""
    return None
