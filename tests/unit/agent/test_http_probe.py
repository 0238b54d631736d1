"""The agent's HTTP health probe against a real server on loopback: status code and reason."""

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from agent.rollout import HttpOutcome, http_check, http_probe
from shared.messages import HealthSpec


@pytest.fixture
async def server() -> AsyncIterator[int]:
    """Serves ``/ok`` (200 "ready"), ``/down`` (503) and ``/slow`` (never in time)."""
    release = asyncio.Event()

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ready")

    async def down(_: web.Request) -> web.Response:
        return web.Response(status=503, text="draining")

    async def slow(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/down", down)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        release.set()
        await runner.cleanup()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_passing_probe_reports_the_status_it_saw(server: int) -> None:
    outcome = await http_probe(server, HealthSpec(path="/ok"))
    assert outcome == HttpOutcome(True, "HTTP 200 from /ok", 200, None)
    # The tuple form the rollout uses says the same.
    assert await http_check(server, HealthSpec(path="/ok")) == (True, "HTTP 200 from /ok")


async def test_a_wrong_status_is_reported_with_its_code(server: int) -> None:
    outcome = await http_probe(server, HealthSpec(), "/down")
    assert (outcome.passed, outcome.status_code, outcome.reason_code) == (
        False,
        503,
        "health-check-status-mismatch",
    )
    expected = await http_probe(server, HealthSpec(path="/ok", expected_status_code=204))
    assert (expected.status_code, expected.reason_code) == (200, "health-check-status-mismatch")
    assert expected.message == "HTTP 200 from /ok (expected 204)"


async def test_missing_text_keeps_the_status_and_names_the_reason(server: int) -> None:
    outcome = await http_probe(server, HealthSpec(path="/ok", expected_response_text="healthy"))
    assert (outcome.passed, outcome.status_code, outcome.reason_code) == (
        False,
        200,
        "health-check-response-text-missing",
    )


async def test_no_answer_has_no_status_code(server: int) -> None:
    timed_out = await http_probe(server, HealthSpec(path="/slow", timeout_seconds=0.2))
    assert (timed_out.passed, timed_out.status_code, timed_out.reason_code) == (
        False,
        None,
        "health-check-timeout",
    )
    refused = await http_probe(_closed_port(), HealthSpec(path="/ok"))
    assert (refused.passed, refused.status_code, refused.reason_code) == (
        False,
        None,
        "health-check-connection-failed",
    )
