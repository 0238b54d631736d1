"""Malformed, unknown, oversized and unauthenticated frames: errors or clean closes, no crash."""

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from shared.crypto import generate_private_key, public_key_text, sign_challenge
from shared.messages import Heartbeat, Hello, HostFacts
from shared.version import AGENT_CONNECT_PATH, CLOSE_UNAUTHORIZED, MAX_FRAME_BYTES
from shared.wire import dump_json
from tests.harness import AgentProcess, Coordinator, eventually, scaled

FACTS = HostFacts(
    hostname="t",
    os="test",
    kernel="k",
    architecture="x86_64",
    cpu_count=1,
    memory_bytes=1,
    python_version="3",
)


async def _enrolled_key(
    coordinator: Coordinator, token: str, name: str
) -> tuple[str, Ed25519PrivateKey]:
    server = await coordinator.add_server(token, name)
    key = generate_private_key()
    status, body, _ = await coordinator.call(
        "POST",
        "/agent/v1/enroll",
        json={"joinToken": server["joinToken"], "publicKey": public_key_text(key)},
    )
    assert status == 201, body
    return server["id"], key


def _ws_url(coordinator: Coordinator) -> str:
    return coordinator.url.replace("http://", "ws://") + AGENT_CONNECT_PATH


async def _handshake(ws: ClientConnection, server_id: str, key: Ed25519PrivateKey) -> None:
    challenge = json.loads(await ws.recv())
    assert challenge["type"] == "challenge"
    await ws.send(
        dump_json(
            Hello(
                id=1,
                server_id=server_id,
                signature=sign_challenge(key, challenge["nonce"], server_id),
                agent_version="test",
                facts=FACTS,
            )
        )
    )
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome", welcome


async def _next_error(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(scaled(10)):
        frame: dict[str, Any] = json.loads(await ws.recv())
    assert frame["type"] == "error", frame
    return frame


async def test_bad_frames_get_error_frames_and_other_agents_carry_on(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    # A well-behaved real agent on another server must stay connected throughout.
    good = await coordinator.add_server(admin_token, "good")
    agent = AgentProcess(tmp_path / "good")
    assert (await agent.enroll(coordinator.url, good["joinToken"]))[0] == 0
    await agent.start()
    try:

        async def good_online() -> bool:
            return await coordinator.agent_status(admin_token, good["id"]) == "online"

        await eventually(good_online, what="good agent online")
        server_id, key = await _enrolled_key(coordinator, admin_token, "noisy")
        async with connect(
            _ws_url(coordinator),
            subprotocols=[Subprotocol("berth.v1")],
            max_size=None,
            compression=None,
        ) as ws:
            await _handshake(ws, server_id, key)
            await ws.send("this is not json")
            error = await _next_error(ws)
            assert error["error"]["code"] == "invalid_message"
            assert error["re"] is None

            await ws.send(json.dumps({"type": "launch_missiles", "id": 2}))
            error = await _next_error(ws)
            assert error["error"]["code"] == "unknown_type"
            assert error["re"] == 2

            await ws.send(json.dumps({"type": "connectivity_report", "id": 3, "re": "x"}))
            error = await _next_error(ws)
            assert error["error"]["code"] == "invalid_message"
            assert error["re"] == 3
            assert error["error"]["details"]["problems"]

            await ws.send(json.dumps([1, 2, 3]))
            assert (await _next_error(ws))["error"]["code"] == "invalid_message"

            await ws.send(b"\x00\x01binary")
            assert (await _next_error(ws))["error"]["code"] == "invalid_message"

            await ws.send(dump_json(Heartbeat(id=1)))  # id 1 was the hello
            error = await _next_error(ws)
            assert error["error"]["code"] == "id_reuse"

            await ws.send(dump_json(Heartbeat(id=10)))  # still fine after all that
            assert coordinator.registry.get(server_id) is not None

            await ws.send("x" * (MAX_FRAME_BYTES + 1))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009  # message too big: a clean close
        assert await coordinator.agent_status(admin_token, good["id"]) == "online"
        status, report, _ = await coordinator.call(
            "POST", f"/servers/{good['id']}/connectivity-tests", token=admin_token
        )
        assert status == 200, report
        assert report["checks"][1]["status"] == "passed", report
    finally:
        await agent.stop()


async def test_wrong_subprotocol_is_refused_before_upgrade(coordinator: Coordinator) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(_ws_url(coordinator), subprotocols=[Subprotocol("berth.v0")]):
            pass
    assert refused.value.response.status_code == 426
    body = json.loads(refused.value.response.body or b"{}")
    assert body["error"]["code"] == "unsupported_protocol"
    assert "berth.v1" in body["error"]["message"]
    async with aiohttp.ClientSession() as http, http.get(coordinator.url + AGENT_CONNECT_PATH) as r:
        assert r.status == 426  # no websocket upgrade at all: still the envelope


async def test_bad_signature_and_replayed_signature_are_refused(
    coordinator: Coordinator, admin_token: str
) -> None:
    server_id, key = await _enrolled_key(coordinator, admin_token, "web-1")
    async with connect(_ws_url(coordinator), subprotocols=[Subprotocol("berth.v1")]) as ws:
        challenge = json.loads(await ws.recv())
        signature = sign_challenge(key, challenge["nonce"], server_id)
        # Sign over another nonce: the signature is bound to this connection's challenge.
        await ws.send(
            dump_json(
                Hello(
                    id=1,
                    server_id=server_id,
                    signature=sign_challenge(key, "n" * 43, server_id),
                    agent_version="t",
                    facts=FACTS,
                )
            )
        )
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CLOSE_UNAUTHORIZED
    # A valid signature captured from one connection is useless on the next.
    async with connect(_ws_url(coordinator), subprotocols=[Subprotocol("berth.v1")]) as ws:
        await ws.recv()
        await ws.send(
            dump_json(
                Hello(
                    id=1, server_id=server_id, signature=signature, agent_version="t", facts=FACTS
                )
            )
        )
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CLOSE_UNAUTHORIZED


async def test_first_frame_must_be_hello(coordinator: Coordinator, admin_token: str) -> None:
    async with connect(_ws_url(coordinator), subprotocols=[Subprotocol("berth.v1")]) as ws:
        await ws.recv()
        await ws.send(dump_json(Heartbeat(id=1)))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4000


async def test_newer_connection_replaces_older(coordinator: Coordinator, admin_token: str) -> None:
    server_id, key = await _enrolled_key(coordinator, admin_token, "web-1")
    async with connect(_ws_url(coordinator), subprotocols=[Subprotocol("berth.v1")]) as first:
        await _handshake(first, server_id, key)
        async with connect(_ws_url(coordinator), subprotocols=[Subprotocol("berth.v1")]) as second:
            await _handshake(second, server_id, key)
            with pytest.raises(ConnectionClosed) as closed:
                await first.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4002
            session = coordinator.registry.get(server_id)
            assert session is not None
            assert session.connected_at <= datetime.now(UTC)
