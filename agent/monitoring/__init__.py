"""Usage sampling, the on-disk sample spool and its delivery, capacity inspection and prune."""

import asyncio
from pathlib import Path

from agent.features import AgentFeature
from agent.monitoring.engine import DockerEngine
from agent.monitoring.feature import MonitoringFeature
from agent.monitoring.spool import SPOOL_FILE, Spool, spool_bound
from agent.runtime import ContainerRuntime
from agent.settings import AgentSettings


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """Return the monitoring feature (its engine calls go through ``runtime``)."""
    spool = Spool(
        state_dir / SPOOL_FILE, spool_bound(settings.spool_hours, settings.sample_seconds)
    )
    return MonitoringFeature(
        DockerEngine(
            runtime, asyncio.get_running_loop(), server_id=getattr(runtime, "server_id", None)
        ),
        state_dir,
        spool,
        settings.sample_seconds,
    )
