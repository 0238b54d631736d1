"""Dependency resources (databases): provisioning plans, managed and imported resources,
bindings into resources' deployments. Plugs in through ``install`` (coordinator/app.py)."""

from collections.abc import AsyncIterator

from aiohttp import web

from coordinator.appkeys import KEYRING_KEY, REGISTRY_KEY
from coordinator.dependencies.realize import Provisioner

PROVISIONER_KEY: web.AppKey[Provisioner] = web.AppKey("dependency_provisioner", Provisioner)


async def _provisioner_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[PROVISIONER_KEY].close()


def install(app: web.Application) -> None:
    """Register the provisioner (hub listener: resume on connect) and its shutdown."""
    provisioner = Provisioner(app[REGISTRY_KEY], app[KEYRING_KEY])
    app[PROVISIONER_KEY] = provisioner
    app[REGISTRY_KEY].add_listener(provisioner)
    app.cleanup_ctx.append(_provisioner_ctx)
