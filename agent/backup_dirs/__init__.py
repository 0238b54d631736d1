"""Server-directory backup target: keep encrypted backup artifacts in allowed local directories."""

from pathlib import Path

from agent.backup_dirs.feature import BackupDirFeature
from agent.features import AgentFeature
from agent.runtime import ContainerRuntime
from agent.settings import AgentSettings


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """Always offered: with no ``BERTH_AGENT_BACKUP_DIRS`` every request is refused saying so."""
    return BackupDirFeature(settings.backup_dirs)
