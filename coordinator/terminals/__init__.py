"""Terminal sessions relayed between API clients and agents."""

from aiohttp import web


def install(app: web.Application) -> None:
    """Register the terminal hub listener, its websocket route and app key on ``app``."""
