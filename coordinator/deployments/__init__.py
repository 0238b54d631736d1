"""Deployments: planning, durable state, the engine that drives agents, and event streaming."""

from collections.abc import AsyncIterator

from aiohttp import web

from coordinator import archive_prune
from coordinator.appkeys import ENGINE_KEY, KEYRING_KEY, REGISTRY_KEY
from coordinator.deployments.engine import DeploymentEngine
from coordinator.deployments.store import DeploymentStore
from coordinator.deployments.stream import Notifier


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    # After the database context, so the engine's tasks are canceled before the DB closes.
    async with app[ENGINE_KEY].running():
        yield


def install(app: web.Application) -> None:
    """Register the deployment engine (its hub listener and app key) and its background jobs:
    the engine's tasks, and pruning of uploaded archives nothing references any more."""
    engine = DeploymentEngine(app[REGISTRY_KEY], app[KEYRING_KEY], DeploymentStore(Notifier()))
    app[ENGINE_KEY] = engine
    app[REGISTRY_KEY].add_listener(engine)
    app.cleanup_ctx.append(_engine_ctx)
    app.cleanup_ctx.append(archive_prune.prune_job)
