"""Websocket upgrades and event streams check ``Origin``: a browser page from another site gets
a 403 before any upgrade (even with a valid terminal ticket) or event; no ``Origin`` (agents,
CLIs) or the coordinator's own origin is allowed."""

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from shared.version import AGENT_CONNECT_PATH, PROTOCOL_VERSION
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, scaled
from tests.unit.coordinator.support import assert_error
from tests.unit.coordinator.test_deployment_engine import create_deployment, make_world
from tests.unit.coordinator.test_terminal_sessions import open_via

EVIL = "https://evil.example"


@pytest.fixture
async def agent(coordinator: Coordinator, admin_token: str) -> AsyncIterator[FakeAgent]:
    fake = await FakeAgent.enroll(coordinator, admin_token, "fake-1")
    await fake.connect()
    try:
        yield fake
    finally:
        await fake.close()


async def _agent_upgrade(coordinator: Coordinator, origin: str | None) -> int:
    """Open the agent link with ``origin``; return 101 when upgraded, else the HTTP status."""
    assert coordinator.http is not None
    headers = {"Origin": origin} if origin is not None else {}
    try:
        async with coordinator.http.ws_connect(
            coordinator.url + AGENT_CONNECT_PATH, protocols=(PROTOCOL_VERSION,), headers=headers
        ) as ws:
            challenge = await ws.receive_json(timeout=scaled(5))
            assert challenge["type"] == "challenge", challenge
            return 101
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status


async def test_terminal_attach_refuses_a_foreign_origin_with_a_valid_ticket(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent
) -> None:
    item, _ = await open_via(coordinator, admin_token, agent)
    url = coordinator.url + item["transport"]["path"]
    ticket = item["transport"]["ticket"]
    assert coordinator.http is not None
    for foreign in (EVIL, "null", f"http://127.0.0.1.evil.example:{coordinator.port}"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await coordinator.http.ws_connect(
                url, protocols=("berth.terminal.v1",), headers={"Origin": foreign}
            )
        assert refused.value.status == 403
    # The refusal is the error envelope, and came before the ticket was even looked at.
    response = await coordinator.call("GET", item["transport"]["path"], headers={"Origin": EVIL})
    assert_error(response, 403, "forbidden")
    # The coordinator's own origin (the page it would serve) attaches with the unburnt ticket.
    async with coordinator.http.ws_connect(
        url, protocols=("berth.terminal.v1",), headers={"Origin": coordinator.url}
    ) as ws:
        await ws.send_json({"type": "auth", "ticket": ticket})
        ready = await ws.receive_json(timeout=scaled(5))
        assert ready["type"] == "ready", ready


async def test_agent_link_refuses_a_foreign_origin(coordinator: Coordinator) -> None:
    assert await _agent_upgrade(coordinator, EVIL) == 403
    assert await _agent_upgrade(coordinator, "null") == 403
    response = await coordinator.call("GET", AGENT_CONNECT_PATH, headers={"Origin": EVIL})
    assert_error(response, 403, "forbidden")
    # Agents send no Origin; a matching one (default port spelled out or not) is fine too.
    assert await _agent_upgrade(coordinator, None) == 101
    assert await _agent_upgrade(coordinator, coordinator.url) == 101
    assert await _agent_upgrade(coordinator, coordinator.url.upper()) == 101


async def test_with_a_public_url_only_its_origin_is_accepted(
    tmp_path: Path, database_url: str
) -> None:
    harness = Coordinator(
        tmp_path / "public", database_url, public_url="https://berth.example.com/base/"
    )
    await harness.start()
    try:
        assert await _agent_upgrade(harness, "https://berth.example.com") == 101
        assert await _agent_upgrade(harness, "https://berth.example.com:443") == 101
        assert await _agent_upgrade(harness, None) == 101
        assert await _agent_upgrade(harness, "http://berth.example.com") == 403
        assert await _agent_upgrade(harness, harness.url) == 403
        assert await _agent_upgrade(harness, EVIL) == 403
    finally:
        await harness.close()


async def test_event_streams_refuse_a_foreign_origin(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    deployment_id = await create_deployment(coordinator, admin_token, world)
    # A canceled (terminal) deployment's stream ends by itself, so each read below finishes.
    status, body, _ = await coordinator.call(
        "POST",
        f"/deployments/{deployment_id}/cancel",
        token=admin_token,
        json={"confirm": deployment_id},
    )
    assert status == 200, body
    path = f"/deployments/{deployment_id}/events/stream?untilTerminal=true"
    response = await coordinator.call("GET", path, token=admin_token, headers={"Origin": EVIL})
    assert_error(response, 403, "forbidden")
    assert coordinator.http is not None
    for origin in (None, coordinator.url):
        headers = {"Authorization": f"Bearer {admin_token}"}
        if origin is not None:
            headers["Origin"] = origin
        async with coordinator.http.get(coordinator.url + path, headers=headers) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"].startswith("text/event-stream")
            assert "event: end" in await answer.text()
