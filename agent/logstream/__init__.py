"""Runtime log streams read from Docker and sent under credit-based flow control."""

from pathlib import Path

from agent.features import AgentFeature
from agent.logstream.docker_api import DockerLogApi
from agent.logstream.feature import LogFeature
from agent.runtime import ContainerRuntime
from agent.settings import AgentSettings


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """Return the log stream feature (it talks to the Docker socket itself, see docker_api)."""
    return LogFeature(DockerLogApi(server_id=getattr(runtime, "server_id", None)))
