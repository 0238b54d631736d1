"""Caddy's admin API calls: a load refused while a certificate was being written is sent again;
an edit (read, then write back) lets no other request of the agent's in between."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from agent.certificates.caddy_logs import CaddyAdmin
from agent.edge_admin import admin_call, admin_edit
from shared.errors import RuntimeFailed

# What Caddy 2.6.2 answered in bench/edge.py while it issued certificates (names shortened).
RACE = (
    '{"error":"loading new config: http app module: start: finalizing automatic HTTPS: '
    "managing certificates for [a.bench.test b.bench.test]: a.bench.test: caching certificate: "
    'decoding certificate metadata: unexpected end of JSON input"}'
)


class Admin:
    """An admin API answering each request with the next of ``answers`` (status, body)."""

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.answers = answers
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        status, body = self.answers[min(self.requests, len(self.answers)) - 1]
        return web.Response(status=status, text=body, content_type="application/json")


Start = Callable[["Admin | Servers"], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Start]:
    """Starts an ``Admin`` (or ``Servers``) on a loopback port; its base URL."""
    runners: list[web.AppRunner] = []

    async def start(admin: "Admin | Servers") -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", admin.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_a_load_refused_by_the_certificate_storage_race_is_sent_again(
    serve: Start,
) -> None:
    admin = Admin([(500, RACE), (500, RACE), (200, '{"ok": 1}')])
    url = await serve(admin)
    assert await admin_call(url, "PATCH", "/id/x/match", [{"host": []}]) == {"ok": 1}
    assert admin.requests == 3


async def test_any_other_refusal_is_final_at_once(serve: Start) -> None:
    admin = Admin([(500, '{"error":"loading new config: unknown field \\"x\\""}'), (200, "{}")])
    url = await serve(admin)
    with pytest.raises(RuntimeFailed, match="unknown field"):
        await admin_call(url, "PATCH", "/id/x", {})
    assert admin.requests == 1


async def test_the_certificate_feature_s_admin_calls_get_the_same_retry(serve: Start) -> None:
    admin = Admin([(500, RACE), (200, '{"ok": 2}')])
    url = await serve(admin)
    assert await CaddyAdmin(url).call("PUT", "/id/x", {}) == (200, {"ok": 2})
    assert admin.requests == 2


class Servers:
    """An admin API holding ``apps.http.servers``: reads and writes it whole, or one server's
    ``skip`` list. A read of the whole lets another request of the agent's in, if one is sent
    within ``window`` seconds, before answering with what it held when it came (as Caddy could
    serve a write between an edit's read and its write)."""

    def __init__(self, window: float) -> None:
        self.servers: dict[str, Any] = {"tls": {"routes": [{"@id": "map", "v": 1}], "skip": []}}
        self.window = window
        self.other = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        if request.path == "/config/apps/http/servers/tls/skip":
            self.servers["tls"]["skip"] = await request.json()
            self.other.set()
        elif request.method == "PATCH":
            self.servers = await request.json()
        else:
            held = json.dumps(self.servers)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.other.wait(), self.window)
            return web.Response(text=held, content_type="application/json")
        return web.Response(text="", content_type="application/json")


async def test_an_edit_lets_no_other_write_of_the_agent_in_between(serve: Start) -> None:
    caddy = Servers(window=0.5)
    url = await serve(caddy)
    skipping: list[asyncio.Task[Any]] = []

    def edit(servers: Any) -> Any:
        return {"tls": {**servers["tls"], "routes": [{"@id": "map", "v": 2}]}}

    async def read_and_skip() -> None:
        # The certificate feature skips a name while the edge edits the servers.
        skipping.append(
            asyncio.create_task(
                CaddyAdmin(url).call("PATCH", "/config/apps/http/servers/tls/skip", ["a.test"])
            )
        )
        await admin_edit(url, "/config/apps/http/servers", edit)

    await read_and_skip()
    await skipping[0]
    # Both writes hold: the skip came after the edit's write, not between its read and write
    # (where the edit's write would have taken it out again).
    assert caddy.servers == {"tls": {"routes": [{"@id": "map", "v": 2}], "skip": ["a.test"]}}


async def test_an_edit_whose_change_refuses_writes_nothing(serve: Start) -> None:
    caddy = Servers(window=0)
    url = await serve(caddy)

    def edit(servers: Any) -> Any:
        raise RuntimeFailed("Caddy holds no route map")

    with pytest.raises(RuntimeFailed, match="no route map"):
        await admin_edit(url, "/config/apps/http/servers", edit)
    assert caddy.servers["tls"]["routes"] == [{"@id": "map", "v": 1}]
