"""Terminal sessions relayed between API clients and agents."""

from collections.abc import AsyncIterator

from aiohttp import web

from coordinator.appkeys import REGISTRY_KEY, SETTINGS_KEY
from coordinator.terminals.hub import TERMINALS_KEY, TerminalHub
from coordinator.terminals.relay import attach

__all__ = ["ATTACH_PATH", "TERMINALS_KEY", "install"]
ATTACH_PATH = "/terminal-sessions/{sessionId}/attach"


async def _hub_ctx(app: web.Application) -> AsyncIterator[None]:
    async for _ in app[TERMINALS_KEY].running():
        yield


async def _end_sessions(app: web.Application) -> None:
    # Before the handlers are waited for: attached clients are told and their sockets close.
    await app[TERMINALS_KEY].shutdown()


def install(app: web.Application) -> None:
    """Register the terminal hub listener, its websocket route and app key on ``app``."""
    hub = TerminalHub(app[REGISTRY_KEY], app[SETTINGS_KEY])
    app[TERMINALS_KEY] = hub
    app[REGISTRY_KEY].add_listener(hub)
    app.cleanup_ctx.append(_hub_ctx)
    app.on_shutdown.append(_end_sessions)
    app.router.add_get(ATTACH_PATH, attach)
