"""Runtime monitoring: sample ingest, rollups, retention, thresholds, usage and capacity."""

from collections.abc import AsyncIterator

from aiohttp import web

from coordinator.appkeys import REGISTRY_KEY, SETTINGS_KEY
from coordinator.monitoring import thresholds
from coordinator.monitoring.retention import retention_job
from coordinator.monitoring.rollups import rollup_job
from coordinator.monitoring.service import MONITORING_KEY, MonitoringService, run_writer


async def _writer_ctx(app: web.Application) -> AsyncIterator[None]:
    async for _ in run_writer(app[MONITORING_KEY]):
        yield


async def _rollups_ctx(app: web.Application) -> AsyncIterator[None]:
    async for _ in rollup_job(app[MONITORING_KEY].rollup_lock):
        yield


async def _retention_ctx(app: web.Application) -> AsyncIterator[None]:
    async for _ in retention_job(app[SETTINGS_KEY], app[MONITORING_KEY].after_prune):
        yield


def install(app: web.Application) -> None:
    """Register the monitoring listener, its background jobs and app keys on ``app``."""
    service = MonitoringService()
    app[MONITORING_KEY] = service
    app[REGISTRY_KEY].add_listener(service)
    # Order matters at shutdown (reverse order): retention stops first, then the writer (what
    # is still queued is resent by the agents), then the final rollup pass runs.
    app.cleanup_ctx.append(_rollups_ctx)
    app.cleanup_ctx.append(_writer_ctx)
    app.cleanup_ctx.append(_retention_ctx)
    thresholds.install(app, service)
