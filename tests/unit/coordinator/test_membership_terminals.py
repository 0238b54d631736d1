"""A downgrade takes a member's terminals away at once: an admin's open terminal (attached)
closes when the admin becomes a member, who may not open shells."""

from collections.abc import AsyncIterator

import pytest

from shared.messages.terminal import TermClose
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, scaled
from tests.unit.coordinator.support import assert_error
from tests.unit.coordinator.test_organizations_api import ORG, _join
from tests.unit.coordinator.test_terminal_sessions import attach, open_via


@pytest.fixture
async def agent(coordinator: Coordinator, admin_token: str) -> AsyncIterator[FakeAgent]:
    fake = await FakeAgent.enroll(coordinator, admin_token, "fake-1")
    await fake.connect()
    try:
        yield fake
    finally:
        await fake.close()


async def test_downgrading_an_admin_ends_its_open_terminal(
    coordinator: Coordinator, admin_token: str, agent: FakeAgent
) -> None:
    carol = await _join(coordinator, admin_token, "carol@example.com", "admin")
    item, opened = await open_via(coordinator, carol["token"], agent)
    ws = await attach(coordinator, item)
    status, body, _ = await coordinator.call(
        "POST",
        f"{ORG}/members/{carol['memberId']}/role",
        token=admin_token,
        json={"role": "member"},
    )
    assert status == 200, body
    end = await ws.receive_json(timeout=scaled(5))
    assert end["type"] == "error", end
    await ws.receive(timeout=scaled(5))
    assert ws.closed
    assert (await agent.expect(TermClose)).session_id == opened.session_id
    # A member may not open another.
    assert_error(
        await coordinator.call("GET", "/terminal-sessions", token=carol["token"]),
        403,
        "forbidden",
    )
