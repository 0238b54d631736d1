"""Scheduled tasks and task runs: definitions, the durable scheduler, run records and logs."""

from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from coordinator.appkeys import KEYRING_KEY, REGISTRY_KEY
from coordinator.scheduling.scheduler import TaskScheduler

__all__ = ["SCHEDULER_KEY", "TaskScheduler", "install"]
SCHEDULER_KEY: Final = web.AppKey("scheduler", TaskScheduler)


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    async for _ in app[SCHEDULER_KEY].running():
        yield


def install(app: web.Application) -> None:
    """Register the scheduler (hub listener and background loop) on ``app``."""
    scheduler = TaskScheduler(app[REGISTRY_KEY], app[KEYRING_KEY])
    app[SCHEDULER_KEY] = scheduler
    app[REGISTRY_KEY].add_listener(scheduler)
    app.cleanup_ctx.append(_scheduler_ctx)
