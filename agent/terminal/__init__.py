"""Terminal sessions: pseudo-terminals for docker exec and host shells."""

from pathlib import Path

from agent.features import AgentFeature
from agent.runtime import ContainerRuntime
from agent.settings import AgentSettings
from agent.terminal.feature import TerminalFeature


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """Return the terminal feature (ptys need no state on disk)."""
    del state_dir
    return TerminalFeature(runtime, settings)
