"""Terminal sessions: pseudo-terminals for docker exec and host shells."""

from pathlib import Path

from agent.features import AgentFeature
from agent.runtime import ContainerRuntime
from agent.settings import AgentSettings


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """Return the terminal feature (None while it is not built)."""
    return None
