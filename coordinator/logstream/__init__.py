"""Runtime logs relayed from agents: streams, flow control, masking."""

from typing import Final

from aiohttp import web

from coordinator.appkeys import REGISTRY_KEY
from coordinator.logstream.relay import LogRelay

RELAY_KEY: Final = web.AppKey("log_relay", LogRelay)


def install(app: web.Application) -> None:
    """Register the log relay listener and its app key on ``app``."""
    relay = LogRelay()
    app[RELAY_KEY] = relay
    app[REGISTRY_KEY].add_listener(relay)
