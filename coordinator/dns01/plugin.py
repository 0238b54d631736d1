"""The DNS-01 capability's plug-in: the issuer, its loop, and how it reaches the edges."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from coordinator.appkeys import KEYRING_KEY, SETTINGS_KEY
from coordinator.certificates import CERTIFICATES_KEY
from coordinator.db import models
from coordinator.dns01.issuer import Issuer, IssuerConfig
from coordinator.outbound import guard_for

ISSUER_KEY: Final = web.AppKey("dns01_issuer", Issuer)


async def push_to_organization(app: web.Application, organization_id: str) -> None:
    """Have every connected server of the organization reload its served certificates (an
    offline one gets them when it connects)."""
    servers = await models.Server.filter(organization_id=organization_id).values_list(
        "id", flat=True
    )
    for server_id in servers:
        _ = await app[CERTIFICATES_KEY].push(str(server_id))


async def _loop_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[ISSUER_KEY].run(app[SETTINGS_KEY].dns01_check_interval_seconds))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def install(app: web.Application) -> None:
    """Register the issuer and its loop (after ``certificates``: it pushes through that link)."""
    settings = app[SETTINGS_KEY]

    async def push(organization_id: str) -> None:
        await push_to_organization(app, organization_id)

    app[ISSUER_KEY] = Issuer(
        IssuerConfig(
            directory=settings.dns01_acme_directory,
            ca_bundle=settings.dns01_acme_ca_bundle,
            email=settings.dns01_acme_email,
            visible_within=settings.dns01_visible_within_seconds,
        ),
        app[KEYRING_KEY],
        guard_for(app),
        push,
    )
    app.cleanup_ctx.append(_loop_ctx)
