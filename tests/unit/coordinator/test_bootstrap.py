"""Bootstrap: status before and after, the one-time first admin, races and validation."""

import asyncio
import json
from typing import Any

from coordinator.db import models
from tests.harness import Coordinator
from tests.unit.coordinator.support import assert_error, problem_fields

FIRST_ADMIN = "/bootstrap/auth/first-admin"
STATUS = "/bootstrap/auth/status"


def _admin(email: str = "admin@example.com", name: str = "Admin") -> dict[str, Any]:
    return {"email": email, "displayName": name}


async def test_status_reports_required_before_and_configured_after(
    coordinator: Coordinator,
) -> None:
    status, before, _ = await coordinator.call("GET", STATUS)
    assert status == 200, before
    assert before["bootstrapRequired"] is True
    assert before["firstAdminConfigured"] is False
    assert before["organizationConfigured"] is False
    assert before["firstAdminEmail"] is None
    assert before["organizationId"] is None
    assert any("first-admin" in step for step in before["nextSteps"])

    status, created, _ = await coordinator.call("POST", FIRST_ADMIN, json=_admin("ops@example.com"))
    assert status == 201, created

    status, after, _ = await coordinator.call("GET", STATUS)
    assert status == 200, after
    assert after["bootstrapRequired"] is False
    assert after["firstAdminConfigured"] is True
    assert after["organizationConfigured"] is True
    # Unauthenticated callers learn that an admin exists, not who it is.
    assert after["firstAdminEmail"] is None
    assert "ops@example.com" not in json.dumps(after)
    assert after["organizationId"] == created["organizationId"]
    assert after["organizationSlug"] == created["organizationSlug"]
    assert not any("first-admin" in step for step in after["nextSteps"])


async def test_first_admin_returns_a_working_all_permission_api_token(
    coordinator: Coordinator,
) -> None:
    status, body, _ = await coordinator.call("POST", FIRST_ADMIN, json=_admin())
    assert status == 201, body
    assert body["created"] is True
    assert body["bootstrapRequired"] is False
    assert body["email"] == "admin@example.com"
    assert body["generatedPassword"] is None
    token = body["apiToken"]
    assert token.startswith("berth_at_")
    assert len(token) > len("berth_at_") + 32
    assert body["apiTokenId"].startswith("tok_")

    user = await models.User.get(id=body["userId"])
    assert user.role == "admin"
    assert user.display_name == "Admin"
    row = await models.ApiToken.get(id=body["apiTokenId"])
    assert row.scope == {"permissions": ["*"]}
    assert row.user_id == body["userId"]  # type: ignore[attr-defined]

    # The token really is an all-permission token: reads and writes both succeed.
    status, listed, _ = await coordinator.call("GET", "/deploy-tokens", token=token)
    assert status == 200, listed
    assert [t["tokenId"] for t in listed["items"]] == [body["apiTokenId"]]
    status, server, _ = await coordinator.call("POST", "/servers", token=token, json={"name": "a"})
    assert status == 201, server


async def test_second_first_admin_is_a_conflict_and_changes_nothing(
    coordinator: Coordinator,
) -> None:
    status, first, _ = await coordinator.call("POST", FIRST_ADMIN, json=_admin())
    assert status == 201, first

    second = await coordinator.call("POST", FIRST_ADMIN, json=_admin("other@example.com", "Other"))
    error = assert_error(second, 409, "conflict")
    assert "already exists" in error["message"]
    assert "apiToken" not in second[1]

    assert await models.User.all().count() == 1
    assert await models.ApiToken.all().count() == 1
    assert await models.Organization.all().count() == 1
    assert not await models.User.exists(email="other@example.com")


async def test_concurrent_first_admin_calls_create_exactly_one_admin(
    coordinator: Coordinator,
) -> None:
    results = await asyncio.gather(
        coordinator.call("POST", FIRST_ADMIN, json=_admin("one@example.com", "One")),
        coordinator.call("POST", FIRST_ADMIN, json=_admin("two@example.com", "Two")),
    )
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [201, 409], results
    loser = next(r for r in results if r[0] == 409)
    assert_error(loser, 409, "conflict")
    winner = next(body for status, body, _ in results if status == 201)

    users = await models.User.all()
    assert [u.email for u in users] == [winner["email"]]
    assert await models.ApiToken.all().count() == 1
    assert await models.Organization.all().count() == 1
    status, listed, _ = await coordinator.call("GET", "/deploy-tokens", token=winner["apiToken"])
    assert status == 200, listed


async def test_invalid_email_is_rejected_with_problems(coordinator: Coordinator) -> None:
    for email in ("not-an-email", "two@@example.com", "spaces in@example.com", ""):
        response = await coordinator.call("POST", FIRST_ADMIN, json=_admin(email=email))
        error = assert_error(response, 400, "invalid_request")
        assert problem_fields(error) == {"email"}, (email, error)
    status, body, _ = await coordinator.call("GET", STATUS)
    assert status == 200
    assert body["bootstrapRequired"] is True
    assert await models.User.all().count() == 0


async def test_invalid_display_name_is_rejected_with_problems(coordinator: Coordinator) -> None:
    for name in ("", "x" * 201):
        response = await coordinator.call("POST", FIRST_ADMIN, json=_admin(name=name))
        error = assert_error(response, 400, "invalid_request")
        assert problem_fields(error) == {"displayName"}, (name, error)
        assert all(p["message"] for p in error["details"]["problems"])


async def test_missing_and_unknown_fields_are_reported(coordinator: Coordinator) -> None:
    response = await coordinator.call("POST", FIRST_ADMIN, json={"role": "admin"})
    error = assert_error(response, 400, "invalid_request")
    assert problem_fields(error) == {"email", "displayName", "role"}
    assert await models.Organization.all().count() == 0
