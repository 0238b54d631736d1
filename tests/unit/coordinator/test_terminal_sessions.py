"""Terminal sessions on the coordinator: tickets, the output ring, credit accounting and route
authorization, with a scripted fake agent instead of a real one."""

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from coordinator.terminals import TERMINALS_KEY
from coordinator.terminals.hub import (
    CREDIT_WINDOW_BYTES,
    GRANT_THRESHOLD_BYTES,
    TerminalHub,
)
from coordinator.terminals.ring import RING_BYTES, OutputRing
from coordinator.terminals.session import ClientEnd
from coordinator.terminals.tickets import TicketBook
from shared.errors import Forbidden, Unauthorized
from shared.messages import ErrorMessage
from shared.messages.terminal import (
    TermClose,
    TermCredit,
    TermExit,
    TermInput,
    TermOpen,
    TermOpened,
    TermOutput,
    TermResize,
)
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, eventually, scaled
from tests.unit.coordinator.support import assert_error, mint_token


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ---- tickets ---------------------------------------------------------------------------------


def test_ticket_is_single_use_and_bound_to_its_session() -> None:
    book = TicketBook(60, Clock())
    ticket, ttl = book.issue("term_a", "usr_1")
    assert ttl == 60
    assert ticket.startswith("berth_tt_")
    with pytest.raises(Unauthorized):
        book.redeem(ticket, "term_b")  # another session's ticket is burnt, not accepted
    with pytest.raises(Unauthorized):
        book.redeem(ticket, "term_a")
    second, _ = book.issue("term_a", "usr_1")
    assert book.redeem(second, "term_a").owner_id == "usr_1"
    with pytest.raises(Unauthorized):
        book.redeem(second, "term_a")


def test_ticket_expires_and_is_stored_hashed() -> None:
    clock = Clock()
    book = TicketBook(60, clock)
    ticket, _ = book.issue("term_a", "usr_1")
    assert ticket not in repr(vars(book))
    clock.now += 60.5
    with pytest.raises(Unauthorized):
        book.redeem(ticket, "term_a")
    fresh, _ = book.issue("term_a", "usr_1")
    book.revoke_session("term_a")
    with pytest.raises(Unauthorized):
        book.redeem(fresh, "term_a")
    clock.now += 61
    book.prune()
    assert len(book) == 0


# ---- ring ------------------------------------------------------------------------------------


def test_ring_keeps_the_newest_bytes_within_its_limit() -> None:
    ring = OutputRing(10)
    ring.append(b"abcd")
    ring.append(b"efgh")
    assert ring.snapshot() == b"abcdefgh"
    assert len(ring) == 8
    ring.append(b"ijkl")
    assert ring.snapshot() == b"cdefghijkl"
    assert len(ring) == 10
    ring.append(b"0123456789ABC")
    assert ring.snapshot() == b"3456789ABC"
    assert len(ring) == 10
    for _ in range(1000):
        ring.append(b"xyz")
    empty = OutputRing(0)
    empty.append(b"anything")
    assert len(empty) == 0
    assert len(ring) == 10
    assert ring.snapshot() == b"zxyzxyzxyz"


# ---- with a coordinator and a fake agent ------------------------------------------------------


@pytest.fixture
async def agent(coordinator: Coordinator, admin_token: str) -> AsyncIterator[FakeAgent]:
    fake = await FakeAgent.enroll(coordinator, admin_token, "fake-1")
    await fake.connect()
    try:
        yield fake
    finally:
        await fake.close()


def hub_of(coordinator: Coordinator) -> TerminalHub:
    runner = coordinator._runner
    assert runner is not None
    return runner.app[TERMINALS_KEY]


async def open_via(
    coordinator: Coordinator, token: str, agent: FakeAgent, **extra: Any
) -> tuple[dict[str, Any], TermOpen]:
    """POST /terminal-sessions while the fake agent answers the term_open."""
    call = asyncio.create_task(
        coordinator.call(
            "POST",
            "/terminal-sessions",
            token=token,
            json={"scope": {"kind": "server", "serverId": agent.server_id}, **extra},
        )
    )
    request = await agent.expect(TermOpen)
    await agent.send(TermOpened(id=agent.next_id(), re=request.id, session_id=request.session_id))
    status, body, _ = await call
    assert status == 201, body
    return body, request


async def output(agent: FakeAgent, session_id: str, data: bytes, seq: int = 1) -> None:
    await agent.send(
        TermOutput(
            id=agent.next_id(),
            session_id=session_id,
            seq=seq,
            data=base64.b64encode(data).decode(),
        )
    )


async def attach(coordinator: Coordinator, item: dict[str, Any]) -> aiohttp.ClientWebSocketResponse:
    assert coordinator.http is not None
    ws = await coordinator.http.ws_connect(
        coordinator.url + item["transport"]["path"], protocols=("berth.terminal.v1",)
    )
    await ws.send_json({"type": "auth", "ticket": item["transport"]["ticket"]})
    ready = await ws.receive_json(timeout=scaled(5))
    assert ready["type"] == "ready", ready
    return ws


async def test_open_relays_input_resize_and_output(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent
) -> None:
    item, request = await open_via(coordinator, admin_token, agent, rows=40, cols=120)
    assert (request.rows, request.cols, request.scope) == (40, 120, "server")
    assert request.initial_credit_bytes == CREDIT_WINDOW_BYTES
    assert item["transport"]["kind"] == "websocket"
    assert item["transport"]["subprotocol"] == "berth.terminal.v1"
    assert item["transport"]["ticket"].startswith("berth_tt_")
    assert item["status"] is None  # the create answer carries no status (as in Appaloft)
    ws = await attach(coordinator, item)
    await ws.send_bytes(b"ls\r")
    typed = await agent.expect(TermInput)
    assert base64.b64decode(typed.data) == b"ls\r"
    await ws.send_json({"type": "resize", "rows": 50, "cols": 160})
    resized = await agent.expect(TermResize)
    assert (resized.rows, resized.cols) == (50, 160)
    await output(agent, request.session_id, b"file-a\r\n")
    assert await ws.receive_bytes(timeout=scaled(5)) == b"file-a\r\n"
    await agent.send(TermExit(id=agent.next_id(), session_id=request.session_id, exit_code=3))
    assert await ws.receive_json(timeout=scaled(5)) == {"type": "exit", "exitCode": 3}
    await ws.close()


async def test_credit_returns_only_after_delivery_and_in_batches(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent
) -> None:
    item, request = await open_via(coordinator, admin_token, agent)
    sid = request.session_id
    hub = hub_of(coordinator)
    session = hub.get(sid)
    assert session is not None
    # Detached: the ring takes the output and credit flows back once a batch is complete.
    chunk = b"x" * (GRANT_THRESHOLD_BYTES // 2)
    await output(agent, sid, chunk, 1)
    await output(agent, sid, chunk, 2)
    credit = await agent.expect(TermCredit)
    assert credit.bytes == GRANT_THRESHOLD_BYTES
    # Attached: bytes count only once written to the client.
    ws = await attach(coordinator, item)
    replay = await ws.receive_bytes(timeout=scaled(5))
    assert replay == chunk * 2  # the ring, replayed; it releases no credit
    await output(agent, sid, chunk, 3)
    await output(agent, sid, chunk, 4)
    assert await ws.receive_bytes(timeout=scaled(5)) == chunk
    assert await ws.receive_bytes(timeout=scaled(5)) == chunk
    credit = await agent.expect(TermCredit)
    assert credit.bytes == GRANT_THRESHOLD_BYTES
    await eventually(lambda: _is(session.in_flight == 0), what="in-flight bytes to settle")
    assert agent.count(TermCredit) == 2
    await ws.close()


async def _is(value: bool) -> bool:
    return value


async def test_output_waits_for_a_slow_client_and_a_greedy_agent_is_cut_off(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent
) -> None:
    _, request = await open_via(coordinator, admin_token, agent)
    hub = hub_of(coordinator)
    session = hub.get(request.session_id)
    assert session is not None
    # A client that takes nothing: its channel is never drained, so no credit may return.
    channel = hub.attach(session)
    block = b"y" * 60_000
    await output(agent, request.session_id, block, 1)
    await output(agent, request.session_id, block, 2)
    await eventually(lambda: _is(session.in_flight == 120_000), what="both blocks to arrive")
    assert agent.count(TermCredit) == 0
    assert channel.queued_bytes == 120_000
    assert session.buffered_bytes() <= CREDIT_WINDOW_BYTES + RING_BYTES
    # Past the window the agent broke the protocol: the session ends, memory stays bounded.
    await output(agent, request.session_id, block, 3)
    await agent.expect(TermClose)
    assert session.status == "closed"
    assert session.in_flight <= CREDIT_WINDOW_BYTES + len(block)
    assert agent.count(TermCredit) == 0
    items = [channel.queue.get_nowait() for _ in range(channel.queue.qsize())]
    end = items[-1]
    assert isinstance(end, ClientEnd)
    assert end.error is not None
    hub.detach(session, channel)


async def test_agent_refusal_and_offline_agent(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent
) -> None:
    call = asyncio.create_task(
        coordinator.call(
            "POST",
            "/terminal-sessions",
            token=admin_token,
            json={"scope": {"kind": "server", "serverId": agent.server_id}},
        )
    )
    request = await agent.expect(TermOpen)
    await agent.send(
        ErrorMessage(
            id=agent.next_id(), re=request.id, error=Forbidden("host shells are disabled").to_body()
        )
    )
    assert_error(await call, 403, "forbidden")
    assert hub_of(coordinator).get(request.session_id) is None
    await agent.close()
    response = await coordinator.call(
        "POST",
        "/terminal-sessions",
        token=admin_token,
        json={"scope": {"kind": "server", "serverId": agent.server_id}},
    )
    assert_error(response, 503, "unavailable")


async def test_bad_input_is_refused(coordinator: Coordinator, admin_token: str) -> None:
    for body in (
        {"scope": {"kind": "server"}},
        {"scope": {"kind": "pod", "serverId": "srv_x"}},
        {"scope": {"kind": "server", "serverId": "srv_x"}, "rows": 0},
        {"scope": {"kind": "server", "serverId": "srv_x"}, "command": []},
        {"scope": {"kind": "server", "serverId": "srv_x"}, "extra": 1},
    ):
        response = await coordinator.call(
            "POST", "/terminal-sessions", token=admin_token, json=body
        )
        assert_error(response, 400, "invalid_request")
    response = await coordinator.call(
        "POST",
        "/terminal-sessions",
        token=admin_token,
        json={"scope": {"kind": "resource", "resourceId": "res_missing"}},
    )
    assert_error(response, 404, "not_found")


async def test_authorization_on_every_route(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent
) -> None:
    item, _ = await open_via(coordinator, admin_token, agent)
    path = f"/terminal-sessions/{item['sessionId']}"
    routes = [
        ("POST", "/terminal-sessions", {"scope": {"kind": "server", "serverId": agent.server_id}}),
        ("GET", "/terminal-sessions", None),
        ("GET", path, None),
        ("POST", f"{path}/tickets", {}),
        ("POST", f"{path}/close", {}),
        ("POST", "/terminal-sessions/expire", {}),
    ]
    for method, route_path, body in routes:
        assert_error(await coordinator.call(method, route_path, json=body), 401, "unauthorized")
    reader = (await mint_token(coordinator, admin_token, ["servers:read"]))["token"]
    for method, route_path, body in routes:
        response = await coordinator.call(method, route_path, token=reader, json=body)
        assert_error(response, 403, "forbidden")
    opener = await mint_token(coordinator, admin_token, ["terminal-sessions:open"], name="o")
    other = opener["token"]
    # Someone else's session looks absent; the list shows only own sessions.
    for method, route_path, body in routes[2:5]:
        response = await coordinator.call(method, route_path, token=other, json=body)
        assert_error(response, 404, "not_found")
    _, listing, _ = await coordinator.call("GET", "/terminal-sessions", token=other)
    assert listing == {"schemaVersion": "terminal-sessions.list/v1", "items": []}
    response = await coordinator.call("POST", "/terminal-sessions/expire", token=other, json={})
    assert_error(response, 403, "forbidden")
    # A manager sees and may close it, but may not attach to it.
    manager = (
        await mint_token(
            coordinator,
            admin_token,
            ["terminal-sessions:open", "terminal-sessions:manage"],
            name="m",
        )
    )["token"]
    status, shown, _ = await coordinator.call("GET", path, token=manager)
    assert status == 200
    assert shown["item"]["status"] == "detached"
    response = await coordinator.call("POST", f"{path}/tickets", token=manager, json={})
    assert_error(response, 403, "forbidden")
    status, expired, _ = await coordinator.call(
        "POST", "/terminal-sessions/expire", token=manager, json={}
    )
    assert status == 200
    assert expired == {"expiredCount": 0, "sessionIds": []}
    status, closed, _ = await coordinator.call("POST", f"{path}/close", token=manager, json={})
    assert status == 200
    assert closed["closed"] is True
    await agent.expect(TermClose)
    # A server the token's scope excludes is not found.
    scoped = (
        await mint_token(
            coordinator, admin_token, ["terminal-sessions:open"], server_ids=["srv_other"], name="s"
        )
    )["token"]
    response = await coordinator.call("POST", "/terminal-sessions", token=scoped, json=routes[0][2])
    assert_error(response, 404, "not_found")


async def test_a_quick_command_can_be_collected_once_after_it_ended(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent
) -> None:
    item, request = await open_via(coordinator, admin_token, agent, command=["uname"])
    await output(agent, request.session_id, b"Linux\r\n")
    await agent.send(TermExit(id=agent.next_id(), session_id=request.session_id, exit_code=0))
    session = hub_of(coordinator).get(request.session_id)
    assert session is not None
    await eventually(lambda: _is(session.status == "closed"), what="the session to end")
    ws = await attach(coordinator, item)
    assert await ws.receive_bytes(timeout=scaled(5)) == b"Linux\r\n"
    assert await ws.receive_json(timeout=scaled(5)) == {"type": "exit", "exitCode": 0}
    await ws.close()
    path = f"/terminal-sessions/{item['sessionId']}/tickets"
    assert_error(await coordinator.call("POST", path, token=admin_token, json={}), 409, "conflict")
