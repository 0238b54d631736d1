"""Application factory: settings, registry, database lifecycle, middlewares and routes."""

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from coordinator.api import setup_routes
from coordinator.appkeys import KEYRING_KEY, REGISTRY_KEY, SETTINGS_KEY
from coordinator.db import database
from coordinator.errors import add_request_id_header, error_middleware
from coordinator.hub.endpoint import agent_connect
from coordinator.hub.registry import Registry
from coordinator.secrets import Keyring
from coordinator.settings import Settings
from shared.version import AGENT_CONNECT_PATH

logger = logging.getLogger(__name__)

# Request bodies above this are refused with 413 before a handler sees them.
MAX_BODY_BYTES = 1024 * 1024


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    async with database(app[SETTINGS_KEY].effective_database_url):
        yield


async def _close_links(app: web.Application) -> None:
    # 1001 "going away": agents treat it as transient and reconnect with backoff.
    await app[REGISTRY_KEY].close_all(1001, "coordinator shutting down")


def create_app(settings: Settings) -> web.Application:
    """Build the coordinator's aiohttp application."""
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS_KEY] = settings
    app[REGISTRY_KEY] = Registry()
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    app[KEYRING_KEY] = Keyring.load_or_create(settings.data_dir)
    app.on_response_prepare.append(add_request_id_header)
    app.cleanup_ctx.append(_database_ctx)
    app.on_shutdown.append(_close_links)
    setup_routes(app)
    app.router.add_get(AGENT_CONNECT_PATH, agent_connect)
    return app
