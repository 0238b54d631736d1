"""The edge capability: access-failure evidence and edge proxy settings (issue 15)."""

from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import web

from coordinator.appkeys import REGISTRY_KEY
from coordinator.edge.access_failures import AccessFailureStore
from coordinator.edge.proxy_settings import EdgeSettingsPusher
from coordinator.hub.session import AgentSession
from shared.errors import PlatformError
from shared.messages import Hello
from shared.messages.edge import AccessFailureReport, EdgeAgentMessage
from shared.messages.typeset import unsolicited_types

ACCESS_FAILURES_KEY: Final = web.AppKey("access_failures", AccessFailureStore)


class EdgeListener:
    """The hub listener: stores access-failure reports, pushes edge settings on connect."""

    def __init__(self, store: AccessFailureStore, pusher: EdgeSettingsPusher) -> None:
        self.store = store
        self.pusher = pusher

    @property
    def message_types(self) -> frozenset[str]:
        """``access_failures`` (the other edge frames are replies)."""
        return unsolicited_types(EdgeAgentMessage)

    async def on_connected(self, session: AgentSession, hello: Hello) -> None:
        """Push the server's stored edge settings, if any."""
        await self.pusher.on_connected(session)

    async def on_message(self, session: AgentSession, message: Any) -> None:
        """Store an access-failure report."""
        if not isinstance(message, AccessFailureReport):
            raise PlatformError(f"unexpected frame {type(message).__name__}")
        await self.store.receive(session.server_id, message)

    def on_disconnected(self, session: AgentSession) -> None:
        """Nothing to do: a push in flight ends with the session's own error."""


def install(app: web.Application) -> None:
    """Register the edge listener on the agent hub."""
    store = AccessFailureStore()
    pusher = EdgeSettingsPusher()
    app[ACCESS_FAILURES_KEY] = store
    app[REGISTRY_KEY].add_listener(EdgeListener(store, pusher))

    async def close_pushes(_: web.Application) -> AsyncIterator[None]:
        yield
        pusher.close()

    app.cleanup_ctx.append(close_pushes)
