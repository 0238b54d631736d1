"""Terminal access dies with its login session: revoking the session that opened a terminal
closes it at once (the attached client is told) and voids its unused tickets."""

from collections.abc import AsyncIterator

import pytest

from shared.messages.terminal import TermClose
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, scaled
from tests.unit.coordinator.test_accounts_api import _login, _set_password
from tests.unit.coordinator.test_terminal_sessions import attach, open_via
from tests.unit.coordinator.test_terminal_token_end import _spare_ticket, _ticket_refused


@pytest.fixture
async def agent(coordinator: Coordinator, admin_token: str) -> AsyncIterator[FakeAgent]:
    fake = await FakeAgent.enroll(coordinator, admin_token, "fake-1")
    await fake.connect()
    try:
        yield fake
    finally:
        await fake.close()


async def test_revoking_a_session_ends_its_terminals_and_tickets(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent
) -> None:
    await _set_password(coordinator, admin_token)
    _, session, _ = await _login(coordinator)
    _, other, _ = await _login(coordinator)
    item, opened = await open_via(coordinator, session["token"], agent)
    ws = await attach(coordinator, item)
    spare = await _spare_ticket(coordinator, session["token"], item)

    status, body, _ = await coordinator.call(
        "POST",
        f"/account/sessions/{session['sessionId']}/revoke",
        token=other["token"],
        json={},
    )
    assert status == 200, body

    end = await ws.receive_json(timeout=scaled(5))
    assert end["type"] == "error", end
    assert end["error"]["code"] == "unauthorized", end
    await ws.receive(timeout=scaled(5))
    assert ws.close_code == 4401
    assert (await agent.expect(TermClose)).session_id == opened.session_id
    await _ticket_refused(coordinator, item, spare)
