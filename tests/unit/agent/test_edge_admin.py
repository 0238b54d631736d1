"""Caddy's admin API calls: a load refused while a certificate was being written is sent again."""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from agent.certificates.caddy_logs import CaddyAdmin
from agent.edge_admin import admin_call
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


Start = Callable[[Admin], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Start]:
    """Starts an ``Admin`` on a loopback port; its base URL."""
    runners: list[web.AppRunner] = []

    async def start(admin: Admin) -> str:
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
