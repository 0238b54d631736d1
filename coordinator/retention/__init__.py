"""Retention: defaults per history category, the scheduled prune that honours them, and the
deployment history prunes (``POST /deployments/prune``, ``/deployments/logs/prune``)."""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web

from coordinator.appkeys import SETTINGS_KEY
from coordinator.db.notification_models import RetentionDefault
from coordinator.retention import defaults, task_run_logs

logger = logging.getLogger(__name__)


async def run_once() -> int:
    """One pass: every enabled policy with scheduling on; how many policies ran."""
    ran = 0
    for row in await RetentionDefault.filter(enabled=True).order_by("id"):
        if not (row.destructive_scheduling_enabled or row.dry_run_scheduling_enabled):
            continue
        try:
            report = await defaults.apply(row, dry_run=not row.destructive_scheduling_enabled)
        except Exception:
            logger.exception(
                "retention: pruning %s of %s failed", row.category, row.organization_id
            )
            continue
        ran += 1
        logger.info("retention: %s of %s: %s", row.category, row.organization_id, report)
    return ran


async def run_built_in(task_run_log_days: int) -> dict[str, int]:
    """The built-in defaults for organizations without a policy of their own (today: task-run
    logs after ``task_run_log_days``; 0 keeps them); lines removed per organization."""
    if task_run_log_days <= 0:
        return {}
    before = datetime.now(UTC) - timedelta(days=task_run_log_days)
    removed = await task_run_logs.prune_by_default(before)
    if removed:
        logger.info("retention: built-in task-run log default removed %s", removed)
    return removed


async def _schedule_ctx(app: web.Application) -> AsyncIterator[None]:
    interval = app[SETTINGS_KEY].retention_prune_interval_seconds
    task_run_log_days = app[SETTINGS_KEY].task_run_log_retention_days

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await run_once()
                await run_built_in(task_run_log_days)
            except Exception:
                logger.exception("retention: a scheduled pass failed")

    async with asyncio.TaskGroup() as tasks:
        job = tasks.create_task(loop())
        try:
            yield
        finally:
            job.cancel()


def install(app: web.Application) -> None:
    """Run the scheduled retention prune (after the database context)."""
    app.cleanup_ctx.append(_schedule_ctx)
