"""Runtime log streams read from Docker and sent under credit-based flow control."""

from pathlib import Path

from agent.features import AgentFeature
from agent.logstream.feature import LogFeature
from agent.runtime import ContainerRuntime
from agent.settings import AgentSettings


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """Return the log stream feature (containers and logs come through ``runtime``)."""
    return LogFeature(runtime)
