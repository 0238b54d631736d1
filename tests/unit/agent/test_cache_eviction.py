"""The renewal eviction's skip and unskip: one read-and-write each, only its own name."""

from collections.abc import Callable
from typing import Any

import pytest

from agent.certificates.cache_eviction import managing_servers, skip, unskip


class HeldServers:
    """Caddy's servers as a dict; ``edit`` applies a change the way ``admin_edit`` does."""

    def __init__(self, servers: dict[str, Any]) -> None:
        self.servers = servers
        self.writes = 0

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        assert (method, path) == ("GET", "/config/apps/http/servers")
        return 200, self.servers

    async def edit(self, path: str, change: Callable[[Any], Any]) -> None:
        server = path.rsplit("/", 1)[1]
        self.servers[server] = change(self.servers.get(server))
        self.writes += 1


async def test_skip_then_unskip_leaves_the_edges_own_names() -> None:
    admin = HeldServers(
        {
            "https": {"routes": [], "automatic_https": {"skip_certificates": ["imported.test"]}},
            "off": {"automatic_https": {"disable": True}},
        }
    )
    assert await managing_servers(admin, "a.test") == ["https"]
    await skip(admin, "a.test", ["https"])
    await skip(admin, "a.test", ["https"])  # already skipped: nothing written
    assert admin.writes == 1
    assert admin.servers["https"]["automatic_https"]["skip_certificates"] == [
        "imported.test",
        "a.test",
    ]
    assert await managing_servers(admin, "a.test") == []
    await unskip(admin, "a.test", ["https"])
    await unskip(admin, "a.test", ["https"])
    assert admin.writes == 2
    assert admin.servers["https"] == {
        "routes": [],
        "automatic_https": {"skip_certificates": ["imported.test"]},
    }


async def test_a_server_that_is_gone_cannot_skip_and_has_nothing_to_unskip() -> None:
    admin = HeldServers({})
    with pytest.raises(OSError, match="no server gone"):
        await skip(admin, "a.test", ["gone"])
    await unskip(admin, "a.test", ["gone"])
    assert admin.servers == {}
