"""Runtime monitoring: sample ingest, rollups, retention, thresholds, usage and capacity."""

from aiohttp import web


def install(app: web.Application) -> None:
    """Register the monitoring listener, its background jobs and app keys on ``app``."""
