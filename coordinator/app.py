"""Application factory: settings, registry, database lifecycle, middlewares, routes, and the one
list of capability plug-ins (``CAPABILITIES``)."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Final

from aiohttp import web

from coordinator import (
    accounts,
    backups,
    certificates,
    console,
    dependencies,
    deployments,
    edge,
    logstream,
    monitoring,
    notifications,
    outbound,
    ratelimit,
    retention,
    scheduling,
    terminals,
)
from coordinator.api import setup_routes
from coordinator.appkeys import KEYRING_KEY, REGISTRY_KEY, ROSTER_KEY, SETTINGS_KEY
from coordinator.connguard import GUARD_KEY, ConnectionGuard
from coordinator.db import database
from coordinator.dns01 import plugin as dns01
from coordinator.errors import add_request_id_header, error_middleware
from coordinator.hub.endpoint import agent_connect
from coordinator.hub.registry import Registry
from coordinator.notifications import outcome_sources as notification_outcomes
from coordinator.secrets import Keyring
from coordinator.server_roster import ServerRoster
from coordinator.settings import Settings
from coordinator.token_streams import TOKEN_STREAMS_KEY, TokenStreams
from shared.version import AGENT_CONNECT_PATH

logger = logging.getLogger(__name__)

# Request bodies above this are refused with 413 before a handler sees them.
MAX_BODY_BYTES = 1024 * 1024

Install = Callable[[web.Application], None]

# Every capability plugs in here, and only here. Its ``install`` registers its hub listener
# (the unsolicited agent frames it consumes), its background jobs (cleanup contexts, started
# after the database's and stopped before it closes), its app keys, and any route outside the
# API table (whose route modules register themselves, see ``coordinator.api``). The order is
# the listeners' order on each link: deployments first, as it always was.
CAPABILITIES: Final[tuple[Install, ...]] = (
    deployments.install,
    monitoring.install,
    logstream.install,
    terminals.install,
    dependencies.install,
    certificates.install,
    scheduling.install,
    console.install,
    notifications.install,
    retention.install,
    accounts.install,
    edge.install,
    dns01.install,
    backups.install,
    notification_outcomes.install,
)


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    async with database(app[SETTINGS_KEY].effective_database_url):
        yield


async def _sweep_stale_links(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    max_silence = settings.agent_heartbeat_seconds * settings.stale_after_heartbeats
    interval = min(30.0, settings.agent_heartbeat_seconds)

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await app[REGISTRY_KEY].close_stale(max_silence)
            except Exception:
                logger.exception("sweeping stale agent links failed")

    async with asyncio.TaskGroup() as tasks:
        sweeper = tasks.create_task(sweep_forever())
        try:
            yield
        finally:
            sweeper.cancel()


async def _close_links(app: web.Application) -> None:
    # 1001 "going away": agents treat it as transient and reconnect with backoff.
    await app[REGISTRY_KEY].close_all(1001, "coordinator shutting down")


def create_app(settings: Settings) -> web.Application:
    """Build the coordinator's aiohttp application."""
    limiter = ratelimit.RateLimiter(
        ratelimit.Limits(
            token=settings.rate_limit_token_per_minute,
            anonymous=settings.rate_limit_anonymous_per_minute,
            bootstrap=settings.rate_limit_bootstrap_per_minute,
            enroll=settings.rate_limit_enroll_per_minute,
        ),
        trusted_proxies=settings.trusted_proxies,
    )
    guard = ConnectionGuard(
        settings.header_read_timeout_seconds, settings.max_unauthenticated_connections
    )
    # The limiter runs inside the error middleware, so its 429 is an ordinary error envelope.
    app = web.Application(
        middlewares=[guard.middleware(), error_middleware, ratelimit.middleware_for(limiter)],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS_KEY] = settings
    app[GUARD_KEY] = guard
    app[ratelimit.LIMITER_KEY] = limiter
    app[REGISTRY_KEY] = Registry()
    app[ROSTER_KEY] = ServerRoster()
    app[TOKEN_STREAMS_KEY] = TokenStreams()
    outbound.install(app, settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    app[KEYRING_KEY] = Keyring.load_or_create(settings.data_dir)
    app.on_response_prepare.append(add_request_id_header)
    app.on_response_prepare.append(ratelimit.add_rate_limit_headers)
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_sweep_stale_links)
    for install in CAPABILITIES:
        install(app)
    app.on_shutdown.append(_close_links)
    setup_routes(app)
    app.router.add_get(AGENT_CONNECT_PATH, agent_connect)
    return app
