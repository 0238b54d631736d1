"""Runtime logs relayed from agents: streams, flow control, masking."""

from aiohttp import web


def install(app: web.Application) -> None:
    """Register the log relay listener and its app key on ``app``."""
