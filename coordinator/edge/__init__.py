"""The edge capability: access-failure evidence from the agents' Caddy (issue 15)."""

from typing import Final

from aiohttp import web

from coordinator.appkeys import REGISTRY_KEY
from coordinator.edge.access_failures import AccessFailureStore

ACCESS_FAILURES_KEY: Final = web.AppKey("access_failures", AccessFailureStore)


def install(app: web.Application) -> None:
    """Register the access-failure listener on the agent hub."""
    store = AccessFailureStore()
    app[ACCESS_FAILURES_KEY] = store
    app[REGISTRY_KEY].add_listener(store)
