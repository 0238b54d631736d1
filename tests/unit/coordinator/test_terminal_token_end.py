"""Terminal access dies with its API token: revoking, rotating or the expiry of the token that
opened a session closes it (the attached client is told) and voids every unused ticket."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from coordinator.db import models
from shared.messages.terminal import TermClose
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, eventually, scaled
from tests.unit.coordinator.support import mint_token
from tests.unit.coordinator.test_terminal_sessions import attach, hub_of, open_via

OPENER = ["terminal-sessions:open", "servers:read"]


@pytest.fixture
async def agent(coordinator: Coordinator, admin_token: str) -> AsyncIterator[FakeAgent]:
    fake = await FakeAgent.enroll(coordinator, admin_token, "fake-1")
    await fake.connect()
    try:
        yield fake
    finally:
        await fake.close()


async def _ticket_refused(coordinator: Coordinator, item: dict[str, Any], ticket: str) -> None:
    """Attaching with ``ticket`` ends in an error frame and a 44xx close, never ``ready``."""
    assert coordinator.http is not None
    async with coordinator.http.ws_connect(
        coordinator.url + item["transport"]["path"], protocols=("berth.terminal.v1",)
    ) as ws:
        await ws.send_json({"type": "auth", "ticket": ticket})
        first = await ws.receive(timeout=scaled(5))
        assert first.type == aiohttp.WSMsgType.TEXT, first
        assert first.json()["type"] == "error", first.data
        closing = await ws.receive(timeout=scaled(5))
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code in (4401, 4409), ws.close_code


async def _spare_ticket(coordinator: Coordinator, token: str, item: dict[str, Any]) -> str:
    status, body, _ = await coordinator.call(
        "POST", f"/terminal-sessions/{item['sessionId']}/tickets", token=token, json={}
    )
    assert status == 201, body
    return str(body["transport"]["ticket"])


async def _closed_events(session_ids: list[str]) -> dict[str, str]:
    rows = await models.AuditEvent.filter(
        event_type="terminal-session.closed", aggregate_id__in=session_ids
    )
    return {str(r.aggregate_id): str(r.payload["reason"]) for r in rows}


@pytest.mark.parametrize("action", ["revoke", "rotate"])
async def test_revoking_or_rotating_a_token_ends_its_terminals_and_tickets(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent, action: str
) -> None:
    opener = await mint_token(coordinator, admin_token, OPENER, name="opener")
    bystander = await mint_token(coordinator, admin_token, OPENER, name="bystander")
    attached_item, attached = await open_via(coordinator, opener["token"], agent)
    waiting_item, waiting = await open_via(coordinator, opener["token"], agent)
    other_item, other = await open_via(coordinator, bystander["token"], agent)
    ws = await attach(coordinator, attached_item)
    spare = await _spare_ticket(coordinator, opener["token"], attached_item)

    token_id = opener["tokenId"]
    status, body, _ = await coordinator.call(
        "POST",
        f"/deploy-tokens/{token_id}/{action}",
        token=admin_token,
        json={"confirmation": {"tokenId": token_id}},
    )
    assert status == 200, body

    # The attached client is told and its socket closes; the agent hangs both ptys up.
    end = await ws.receive_json(timeout=scaled(5))
    assert end["type"] == "error", end
    assert end["error"]["code"] == "unauthorized", end
    await ws.receive(timeout=scaled(5))
    assert ws.close_code == 4401
    hung_up = {(await agent.expect(TermClose)).session_id for _ in range(2)}
    assert hung_up == {attached.session_id, waiting.session_id}
    # Tickets issued before the revocation are void: the unused one from opening, and the spare.
    await _ticket_refused(coordinator, waiting_item, waiting_item["transport"]["ticket"])
    await _ticket_refused(coordinator, attached_item, spare)
    reason = f"token-{action}d"
    assert await _closed_events([attached.session_id, waiting.session_id]) == {
        attached.session_id: reason,
        waiting.session_id: reason,
    }
    ended = await models.AuditEvent.get(
        event_type="deploy-token.terminal-access-ended", aggregate_id=token_id
    )
    assert ended.payload["reason"] == reason
    closed_ids = ended.payload["closedSessionIds"]
    assert isinstance(closed_ids, list)
    assert sorted(closed_ids) == sorted([attached.session_id, waiting.session_id])
    # Another token's session is untouched.
    hub = hub_of(coordinator)
    untouched = hub.get(other.session_id)
    assert untouched is not None
    assert untouched.status == "detached"
    ws_other = await attach(coordinator, other_item)
    await ws_other.close()


async def test_an_expiring_token_ends_its_terminals_and_tickets(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent
) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=scaled(3))
    opener = await mint_token(
        coordinator, admin_token, OPENER, name="short", expiresAt=expires.isoformat()
    )
    item, request = await open_via(coordinator, opener["token"], agent)
    ws = await attach(coordinator, item)
    spare = await _spare_ticket(coordinator, opener["token"], item)
    hub = hub_of(coordinator)
    session = hub.get(request.session_id)
    assert session is not None

    async def closed() -> bool:
        return session.status == "closed"

    # Nobody revokes it: the hub's sweep notices the expiry by itself.
    await eventually(closed, timeout=20, what="the expired token's session to close")
    assert datetime.now(UTC) >= expires
    end = await ws.receive_json(timeout=scaled(5))
    assert end["type"] == "error", end
    assert session.close_reason == "token-expired"
    assert (await agent.expect(TermClose)).session_id == request.session_id
    await _ticket_refused(coordinator, item, spare)


async def test_a_ticket_dies_with_its_token_even_before_the_sweep(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent
) -> None:
    opener = await mint_token(coordinator, admin_token, OPENER, name="checked")
    item, request = await open_via(coordinator, opener["token"], agent)
    # Expired behind the hub's back (as time passing would): the attach itself checks.
    past = datetime.now(UTC) - timedelta(seconds=1)
    await models.ApiToken.filter(id=opener["tokenId"]).update(expires_at=past)
    await _ticket_refused(coordinator, item, item["transport"]["ticket"])
    session = hub_of(coordinator).get(request.session_id)
    assert session is not None
    assert session.status != "active"
