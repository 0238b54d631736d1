"""Backups of dependency resources: encrypted artifacts on the coordinator's storage, taken and
restored through the database's agent. Plugs in through ``install`` (coordinator/app.py)."""

from collections.abc import AsyncIterator

from aiohttp import web

from coordinator.appkeys import KEYRING_KEY, REGISTRY_KEY, SETTINGS_KEY
from coordinator.backups.runner import BackupRunner

RUNNER_KEY: web.AppKey[BackupRunner] = web.AppKey("backup_runner", BackupRunner)


async def _runner_ctx(app: web.Application) -> AsyncIterator[None]:
    await app[RUNNER_KEY].fail_interrupted()
    yield
    await app[RUNNER_KEY].close()


def install(app: web.Application) -> None:
    """Register the runner; at start-up it fails what a previous run left unfinished."""
    app[RUNNER_KEY] = BackupRunner(app[REGISTRY_KEY], app[KEYRING_KEY], app[SETTINGS_KEY])
    app.cleanup_ctx.append(_runner_ctx)
