"""The server roster: an organization's server ids, cached until the servers API changes them."""

from datetime import UTC, datetime

from coordinator.db import models
from coordinator.server_roster import ServerRoster
from tests.harness import Coordinator


async def _register(coordinator: Coordinator, token: str, name: str) -> str:
    status, body, _ = await coordinator.call("POST", "/servers", token=token, json={"name": name})
    assert status == 201, body
    return str(body["id"])


async def _organization_of(server_id: str) -> str:
    row = await models.Server.get(id=server_id).values("organization_id")
    return str(row["organization_id"])


async def test_roster_is_cached_and_follows_the_servers_api(
    coordinator: Coordinator, admin_token: str
) -> None:
    first = await _register(coordinator, admin_token, "roster-a")
    organization = await _organization_of(first)
    roster = coordinator.roster
    assert await roster.ids(organization) == (first,)

    # A row written behind the API's back is not seen: the answer comes from the cache.
    _ = await models.Server.create(
        id="srv_behind", organization_id=organization, name="behind", created_at=datetime.now(UTC)
    )
    assert await roster.ids(organization) == (first,)

    # Registering through the API reports the change: the next answer reads the table again.
    second = await _register(coordinator, admin_token, "roster-b")
    assert await roster.ids(organization) == tuple(sorted([first, second, "srv_behind"]))


async def test_an_old_answer_expires(coordinator: Coordinator, admin_token: str) -> None:
    """Servers added outside the API (another coordinator, a repair) show up after max_age."""
    first = await _register(coordinator, admin_token, "roster-c")
    organization = await _organization_of(first)
    expired = ServerRoster(max_age=0.0)
    assert await expired.ids(organization) == (first,)
    _ = await models.Server.create(
        id="srv_later", organization_id=organization, name="later", created_at=datetime.now(UTC)
    )
    assert await expired.ids(organization) == tuple(sorted([first, "srv_later"]))
