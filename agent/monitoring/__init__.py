"""Usage sampling, the on-disk sample spool and its delivery, capacity inspection and prune."""

import logging
from pathlib import Path

from agent.features import AgentFeature
from agent.monitoring.engine import DockerEngine
from agent.monitoring.feature import MonitoringFeature
from agent.monitoring.spool import SPOOL_FILE, Spool, spool_bound
from agent.runtime import ContainerRuntime
from agent.runtime.docker import DockerRuntime
from agent.settings import AgentSettings

logger = logging.getLogger(__name__)


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """Return the monitoring feature (None for a runtime that is not the Docker engine)."""
    if not isinstance(runtime, DockerRuntime):
        logger.info("monitoring is off: it needs the Docker engine runtime")
        return None
    spool = Spool(
        state_dir / SPOOL_FILE, spool_bound(settings.spool_hours, settings.sample_seconds)
    )
    return MonitoringFeature(
        DockerEngine(runtime.api_client, server_id=runtime.server_id),
        state_dir,
        spool,
        settings.sample_seconds,
    )
