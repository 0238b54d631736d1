"""Authentication and authorization: bearer tokens on every protected route, scopes, expiry."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import coordinator.api  # noqa: F401  (registers every route in ROUTES)
from coordinator.api.routing import ROUTES, Route
from coordinator.db import models
from coordinator.permissions import PERMISSIONS
from tests.harness import Coordinator
from tests.unit.coordinator.support import assert_error, database_dump, mint_token, parse_time

PROTECTED = [r for r in ROUTES if r.permission is not None]
_PLACEHOLDER = re.compile(r"{[A-Za-z0-9_]+}")


def _concrete_path(route: Route) -> str:
    return _PLACEHOLDER.sub("dummy_0123456789", route.path)


def _route_id(route: Route) -> str:
    return f"{route.method} {route.path}"


def test_the_route_table_has_protected_routes_for_every_area() -> None:
    # Guards the parametrisations below against an accidentally empty or partial route table.
    paths = {r.path for r in PROTECTED}
    assert {"/servers", "/servers/{serverId}", "/deploy-tokens", "/audit-events"} <= paths
    # A permission outside PERMISSIONS could only ever be exercised with a "*" token.
    assert {r.permission for r in PROTECTED} <= set(PERMISSIONS)


@pytest.mark.parametrize("route", PROTECTED, ids=_route_id)
async def test_every_protected_route_requires_a_valid_token_with_its_permission(
    coordinator: Coordinator, admin_token: str, route: Route
) -> None:
    assert route.permission is not None
    path = _concrete_path(route)
    body: dict[str, Any] | None = {} if route.body else None
    others = [p for p in PERMISSIONS if p != route.permission]
    limited = (await mint_token(coordinator, admin_token, others))["token"]
    before = await database_dump(ignore={"last_used_at"})

    for headers in (
        {},
        {"Authorization": f"Basic {admin_token}"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer berth_at_not-a-real-token"},
        {"Authorization": f"Bearer {admin_token}x"},
    ):
        response = await coordinator.call(route.method, path, json=body, headers=headers)
        assert_error(response, 401, "unauthorized")

    # A valid token is refused too, unless its scope grants the route's permission.
    response = await coordinator.call(route.method, path, token=limited, json=body)
    error = assert_error(response, 403, "forbidden")
    assert error["details"] == {"requiredPermission": route.permission}

    assert await database_dump(ignore={"last_used_at"}) == before


async def test_missing_header_gets_401_with_bearer_challenge(coordinator: Coordinator) -> None:
    error = assert_error(await coordinator.call("GET", "/servers"), 401, "unauthorized")
    assert "Authorization" in error["message"]


async def test_non_bearer_scheme_gets_401(coordinator: Coordinator, admin_token: str) -> None:
    response = await coordinator.call(
        "GET", "/servers", headers={"Authorization": f"Token {admin_token}"}
    )
    error = assert_error(response, 401, "unauthorized")
    assert "Bearer" in error["message"]
    assert admin_token not in error["message"]


async def test_bearer_scheme_is_case_insensitive(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, body, _ = await coordinator.call(
        "GET", "/servers", headers={"Authorization": f"bearer {admin_token}"}
    )
    assert status == 200, body


async def test_wrong_token_gets_401(coordinator: Coordinator, admin_token: str) -> None:
    status, _, _ = await coordinator.call("GET", "/servers", token=admin_token)
    assert status == 200
    wrong = admin_token[:-1] + ("A" if admin_token[-1] != "A" else "B")
    error = assert_error(
        await coordinator.call("GET", "/servers", token=wrong), 401, "unauthorized"
    )
    assert error["message"] == "token is not valid"


async def test_scope_without_permission_gets_403_and_writes_nothing(
    coordinator: Coordinator, admin_token: str
) -> None:
    reader = (await mint_token(coordinator, admin_token, ["servers:read"]))["token"]
    status, body, _ = await coordinator.call("GET", "/servers", token=reader)
    assert status == 200, body
    response = await coordinator.call("POST", "/servers", token=reader, json={"name": "web-1"})
    error = assert_error(response, 403, "forbidden")
    assert error["details"]["requiredPermission"] == "servers:write"
    assert await models.Server.all().count() == 0


async def test_expired_token_gets_401(coordinator: Coordinator, admin_token: str) -> None:
    created = await mint_token(coordinator, admin_token, ["servers:read"])
    status, _, _ = await coordinator.call("GET", "/servers", token=created["token"])
    assert status == 200
    past = datetime.now(UTC) - timedelta(seconds=1)
    await models.ApiToken.filter(id=created["tokenId"]).update(expires_at=past)
    error = assert_error(
        await coordinator.call("GET", "/servers", token=created["token"]), 401, "unauthorized"
    )
    assert "expired" in error["message"]


async def test_token_with_future_expiry_works_and_past_expiry_is_refused_at_creation(
    coordinator: Coordinator, admin_token: str
) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = await mint_token(coordinator, admin_token, ["servers:read"], expiresAt=soon)
    assert parse_time(created["expiresAt"]) == parse_time(soon)
    status, _, _ = await coordinator.call("GET", "/servers", token=created["token"])
    assert status == 200

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=admin_token,
        json={"displayName": "old", "expiresAt": past},
    )
    assert_error(response, 400, "invalid_request")


async def test_revoked_token_gets_401(coordinator: Coordinator, admin_token: str) -> None:
    created = await mint_token(coordinator, admin_token, ["servers:read"])
    status, body, _ = await coordinator.call(
        "POST",
        f"/deploy-tokens/{created['tokenId']}/revoke",
        token=admin_token,
        json={"confirmation": {"tokenId": created["tokenId"]}},
    )
    assert status == 200, body
    error = assert_error(
        await coordinator.call("GET", "/servers", token=created["token"]), 401, "unauthorized"
    )
    assert "revoked" in error["message"]


async def test_last_used_at_is_set_after_use(coordinator: Coordinator, admin_token: str) -> None:
    created = await mint_token(coordinator, admin_token, ["servers:read"])
    path = f"/deploy-tokens/{created['tokenId']}"
    status, before, _ = await coordinator.call("GET", path, token=admin_token)
    assert status == 200, before
    assert before["lastUsedAt"] is None

    started = datetime.now(UTC)
    status, _, _ = await coordinator.call("GET", "/servers", token=created["token"])
    assert status == 200
    status, after, _ = await coordinator.call("GET", path, token=admin_token)
    assert status == 200, after
    used = parse_time(after["lastUsedAt"])
    assert started - timedelta(seconds=1) <= used <= datetime.now(UTC) + timedelta(seconds=1)


async def test_failed_authentication_does_not_touch_last_used_at(
    coordinator: Coordinator, admin_token: str
) -> None:
    created = await mint_token(coordinator, admin_token, ["servers:read"])
    await models.ApiToken.filter(id=created["tokenId"]).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    status, _, _ = await coordinator.call("GET", "/servers", token=created["token"])
    assert status == 401
    row = await models.ApiToken.get(id=created["tokenId"])
    assert row.last_used_at is None
