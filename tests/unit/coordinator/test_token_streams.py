"""Streams end with their token: an open timeline stream (SSE) of a token that is revoked,
rotated or expires is closed, instead of running on for as long as the client keeps it open."""

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from tests.harness import Coordinator, scaled
from tests.unit.coordinator.support import mint_token
from tests.unit.coordinator.test_deployment_engine import create_deployment, make_world

READER = ["deployments:read"]


async def _stream_until_closed(
    coordinator: Coordinator, token: str, path: str, opened: asyncio.Event | None = None
) -> None:
    """Read the stream until the coordinator closes it; set ``opened`` once it answered.

    The deployment never finishes, so only the coordinator ending the stream stops the read;
    the client timeout fails the test otherwise.
    """
    assert coordinator.http is not None
    async with coordinator.http.get(
        coordinator.url + path,
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=scaled(30)),
    ) as response:
        assert response.status == 200, await response.text()
        if opened is not None:
            opened.set()
        try:
            async for _ in response.content.iter_any():
                pass
        except aiohttp.ClientPayloadError:
            pass  # cut mid-stream: exactly what is expected


@pytest.mark.parametrize("action", ["revoke", "rotate"])
async def test_revoking_or_rotating_a_token_ends_its_open_streams(
    coordinator: Coordinator, admin_token: str, action: str
) -> None:
    world = await make_world(coordinator, admin_token)
    deployment_id = await create_deployment(coordinator, admin_token, world)
    reader = await mint_token(coordinator, admin_token, READER, name="reader")
    other = await mint_token(coordinator, admin_token, READER, name="other")
    path = f"/deployments/{deployment_id}/events/stream?untilTerminal=true"
    opened = [asyncio.Event(), asyncio.Event()]
    stream = asyncio.create_task(
        _stream_until_closed(coordinator, reader["token"], path, opened[0])
    )
    bystander = asyncio.create_task(
        _stream_until_closed(coordinator, other["token"], path, opened[1])
    )
    for event in opened:
        await asyncio.wait_for(event.wait(), scaled(10))

    token_id = reader["tokenId"]
    status, body, _ = await coordinator.call(
        "POST",
        f"/deploy-tokens/{token_id}/{action}",
        token=admin_token,
        json={"confirmation": {"tokenId": token_id}},
    )
    assert status == 200, body
    await asyncio.wait_for(stream, scaled(10))
    assert not bystander.done()  # another token's stream goes on...
    status, body, _ = await coordinator.call(
        "POST",
        f"/deploy-tokens/{other['tokenId']}/revoke",
        token=admin_token,
        json={"confirmation": {"tokenId": other["tokenId"]}},
    )
    assert status == 200, body
    await asyncio.wait_for(bystander, scaled(10))  # ...until its own token goes


async def test_a_token_that_expires_ends_its_open_streams(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    deployment_id = await create_deployment(coordinator, admin_token, world)
    expires = datetime.now(UTC) + timedelta(seconds=scaled(2))
    reader = await mint_token(
        coordinator, admin_token, READER, name="short", expiresAt=expires.isoformat()
    )
    path = f"/deployments/{deployment_id}/events/stream?untilTerminal=true"
    await asyncio.wait_for(_stream_until_closed(coordinator, reader["token"], path), scaled(15))
    assert datetime.now(UTC) >= expires
