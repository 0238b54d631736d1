"""Backups of dependency resources and volumes: encrypted artifacts in a backup target (the
coordinator's storage or an S3-compatible bucket), taken and restored through the agent, and the
loop that applies backup policies. Plugs in through ``install`` (coordinator/app.py)."""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from coordinator.appkeys import KEYRING_KEY, REGISTRY_KEY, SETTINGS_KEY
from coordinator.backups.runner import BackupListener, BackupRunner
from coordinator.backups.volume_runner import VolumeBackupRunner
from coordinator.outbound import guard_for

logger = logging.getLogger(__name__)

RUNNER_KEY: web.AppKey[BackupRunner] = web.AppKey("backup_runner", BackupRunner)
VOLUME_RUNNER_KEY: web.AppKey[VolumeBackupRunner] = web.AppKey(
    "volume_backup_runner", VolumeBackupRunner
)


async def _policy_loop(runner: BackupRunner, volumes: VolumeBackupRunner, interval: float) -> None:
    # Imported here: policies imports this package (its service and runner).
    from coordinator.backups import policies, volume_policies

    while True:
        await asyncio.sleep(interval)
        try:
            await policies.run_due(runner, datetime.now(UTC))
        except Exception:
            logger.exception("applying backup policies failed")
        try:
            await volume_policies.run_due(volumes, datetime.now(UTC))
        except Exception:
            logger.exception("applying volume backup policies failed")


async def _runner_ctx(app: web.Application) -> AsyncIterator[None]:
    runner = app[RUNNER_KEY]
    await runner.fail_interrupted()
    await app[VOLUME_RUNNER_KEY].fail_interrupted()
    loop = asyncio.get_running_loop().create_task(
        _policy_loop(runner, app[VOLUME_RUNNER_KEY], app[SETTINGS_KEY].backup_policy_poll_seconds)
    )
    try:
        yield
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await runner.close()


def install(app: web.Application) -> None:
    """Register the runner; at start-up it fails what a previous run left unfinished."""
    app[RUNNER_KEY] = BackupRunner(
        app[REGISTRY_KEY], app[KEYRING_KEY], app[SETTINGS_KEY], lambda: guard_for(app)
    )
    app[VOLUME_RUNNER_KEY] = VolumeBackupRunner(app[RUNNER_KEY])
    app[REGISTRY_KEY].add_listener(BackupListener())
    app.cleanup_ctx.append(_runner_ctx)
