"""The agent exits with EXIT_FATAL and one readable line when the protocol is incompatible."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from agent.identity import AgentKey
from agent.state import Enrollment, StateDir
from shared.version import AGENT_CONNECT_PATH, EXIT_FATAL
from tests.harness import AgentProcess


@pytest.fixture
async def future_coordinator() -> AsyncIterator[str]:
    """A stand-in for a coordinator that only speaks a newer protocol (berth.v2)."""

    async def connect(request: web.Request) -> web.StreamResponse:
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        if "berth.v2" not in offered:
            return web.json_response(
                {
                    "error": {
                        "code": "unsupported_protocol",
                        "message": "this coordinator speaks berth.v2",
                    }
                },
                status=426,
            )
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_get(AGENT_CONNECT_PATH, connect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_incompatible_protocol_is_fatal(future_coordinator: str, tmp_path: Path) -> None:
    StateDir(tmp_path / "agent").save(
        Enrollment(
            coordinator_url=future_coordinator,
            server_id="srv_x",
            server_name="x",
            key_fingerprint="",
            ca_file=None,
        ),
        AgentKey.generate(),
        ca_pem=None,
    )
    agent = AgentProcess(tmp_path / "agent")
    await agent.start()
    assert await agent.wait_exit() == EXIT_FATAL
    last_line = agent.log().strip().splitlines()[-1]
    assert last_line.startswith("berth-agent: coordinator refused the connection with HTTP 426")
    assert "berth.v2" in last_line


async def test_missing_enrollment_is_fatal_with_hint(tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path / "never-enrolled")
    await agent.start()
    assert await agent.wait_exit() == EXIT_FATAL
    assert "run 'berth-agent enroll'" in agent.log()
