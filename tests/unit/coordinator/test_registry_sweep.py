"""The registry's stale-session sweep closes silent links and leaves live ones alone."""

from datetime import UTC, datetime, timedelta
from typing import cast

from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession


class _StubSession:
    def __init__(self, server_id: str, silent_for: float) -> None:
        self.server_id = server_id
        self.last_seen = datetime.now(UTC) - timedelta(seconds=silent_for)
        self.closed_with: tuple[int, str] | None = None

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


async def test_close_stale_closes_only_silent_sessions() -> None:
    registry = Registry()
    silent = _StubSession("srv_silent", silent_for=200)
    live = _StubSession("srv_live", silent_for=5)
    for stub in (silent, live):
        await registry.attach(cast(AgentSession, stub))

    closed = await registry.close_stale(180)

    assert closed == 1
    assert silent.closed_with == (1001, "no heartbeat")
    assert live.closed_with is None
    assert registry.get("srv_silent") is None
    assert registry.get("srv_live") is cast(AgentSession, live)
    assert await registry.close_stale(180) == 0
