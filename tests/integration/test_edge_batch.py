"""An edge change's admin writes sent as one (``AdminBatch``) leave a real Caddy holding exactly
what the same writes sent one by one leave it holding; a write that does not resolve writes
nothing."""

import copy
from collections.abc import Callable
from typing import Any

import pytest

from agent.edge_admin import admin_call, admin_edit
from agent.edge_batch import AdminBatch
from agent.edge_setup import SERVERS_PATH
from shared.errors import RuntimeFailed
from tests.edge_proxy import Caddy, free_port
from tests.harness import eventually

HTTP, TLS = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"


def route(route_id: str, host: str, body: str = "ok") -> dict[str, Any]:
    return {
        "@id": route_id,
        "match": [{"host": [host]}],
        "handle": [{"handler": "static_response", "body": body}],
    }


def map_route(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@id": "map",
        "handle": [
            {
                "handler": "map",
                "source": "{http.request.host}",
                "destinations": ["{b.res}"],
                "mappings": entries,
                "defaults": [""],
            }
        ],
    }


def entry(entry_id: str, host: str) -> dict[str, Any]:
    return {"@id": entry_id, "input": host, "outputs": [entry_id]}


START: dict[str, Any] = {
    "http": {
        "listen": [HTTP],
        "automatic_https": {"disable": True},
        "routes": [
            map_route([entry("e1", "one.test"), entry("e2", "two.test")]),
            route("own", "own.test"),
            route("fallback", "fallback.test"),
        ],
    },
    "other": {
        "listen": [TLS],
        "automatic_https": {"disable": True},
        "routes": [route("redirects", "one.test"), route("fallback-2", "x.test")],
    },
}

# What one edge change may send: every form the edge uses (``agent/edge.py``, ``edge_map_write``).
WRITES: list[tuple[str, str, Any, bool]] = [
    ("PATCH", "/id/own", route("own", "own.test", "redeployed"), False),
    ("DELETE", "/id/e1", None, False),  # a binding moving out of the map ...
    ("PUT", "/id/fallback", route("e1", "one.test", "own route"), False),  # ... same id
    ("POST", "/id/map/handle/0/mappings", entry("e3", "three.test"), False),
    ("POST", "/id/map/handle/0/mappings/...", [entry("e4", "four.test")], False),
    ("PATCH", "/id/e2", entry("e2", "deux.test"), False),
    ("PUT", f"{SERVERS_PATH}/other/routes/0", route("path", "p.test"), False),
    ("POST", f"{SERVERS_PATH}/other/routes", route("tail", "t.test"), False),
    ("DELETE", "/id/fallback-2", None, False),
    ("POST", f"{SERVERS_PATH}/other/routes/...", [route("fallback-2", "x.test")], False),
    ("PATCH", "/id/redirects/match", [{"host": ["one.test", "four.test"]}], False),
    ("DELETE", "/id/gone-already", None, True),
]


class Sent:
    """The calls a batch sends to the Caddy at ``url``, recorded as it sends them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.calls: list[tuple[str, str]] = []

    async def send(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        self.calls.append((method, path))
        return await admin_call(self.url, method, path, body, missing_ok=missing_ok)

    async def edit(self, path: str, edit: Callable[[Any], Any]) -> None:
        self.calls.append(("EDIT", path))
        await admin_edit(self.url, path, edit)


@pytest.fixture
async def servers(caddy: Caddy) -> Caddy:
    async def up() -> bool:
        try:
            await admin_call(caddy.admin_url, "POST", "/config/apps", {"http": {"servers": {}}})
        except RuntimeFailed:
            return False
        return True

    await eventually(up, timeout=15, what="Caddy's admin API")
    return caddy


async def reset(caddy: Caddy) -> None:
    await admin_call(caddy.admin_url, "PATCH", SERVERS_PATH, copy.deepcopy(START))


async def test_a_batch_leaves_caddy_as_the_same_writes_one_by_one(servers: Caddy) -> None:
    url = servers.admin_url
    await reset(servers)
    for method, path, body, missing_ok in WRITES:
        await admin_call(url, method, path, copy.deepcopy(body), missing_ok=missing_ok)
    one_by_one = await admin_call(url, "GET", SERVERS_PATH)

    await reset(servers)
    sent = Sent(url)
    batch = AdminBatch(sent.send, sent.edit)
    for method, path, body, missing_ok in WRITES:
        assert await batch.call(method, path, copy.deepcopy(body), missing_ok=missing_ok) is None
    assert sent.calls == []  # nothing sent before the flush
    await batch.flush()
    assert sent.calls == [("EDIT", SERVERS_PATH)]
    assert await admin_call(url, "GET", SERVERS_PATH) == one_by_one


async def test_one_write_goes_as_it_is_and_a_read_sends_what_is_recorded_first(
    servers: Caddy,
) -> None:
    url = servers.admin_url
    await reset(servers)
    sent = Sent(url)
    batch = AdminBatch(sent.send, sent.edit)
    await batch.call("PATCH", "/id/own", route("own", "own.test", "v2"))
    assert (await batch.call("GET", "/id/own"))["handle"][0]["body"] == "v2"
    assert sent.calls == [("PATCH", "/id/own"), ("GET", "/id/own")]
    # A write outside the servers is not folded into an edit of them.
    sent.calls.clear()
    await batch.call("PATCH", "/id/own", route("own", "own.test", "v3"))
    await batch.call("POST", "/config/apps/tls", {})
    await batch.flush()
    assert sent.calls == [("PATCH", "/id/own"), ("POST", "/config/apps/tls")]


async def test_a_write_that_does_not_resolve_writes_nothing(servers: Caddy) -> None:
    url = servers.admin_url
    await reset(servers)
    before = await admin_call(url, "GET", SERVERS_PATH)

    async def edit(path: str, edit: Callable[[Any], Any]) -> None:
        await admin_edit(url, path, edit)

    async def send(method: str, path: str, body: Any = None, *, missing_ok: bool = False) -> Any:
        raise AssertionError("several writes go as one edit")

    batch = AdminBatch(send, edit)
    await batch.call("PATCH", "/id/own", route("own", "own.test", "never"))
    await batch.call("PATCH", "/id/nowhere", route("nowhere", "n.test"))
    with pytest.raises(RuntimeFailed, match="PATCH /id/nowhere"):
        await batch.flush()
    assert await admin_call(url, "GET", SERVERS_PATH) == before
    # Caddy itself refuses the same write (404 for an unknown id).
    with pytest.raises(RuntimeFailed, match="404"):
        await admin_call(url, "PATCH", "/id/nowhere", route("nowhere", "n.test"))
