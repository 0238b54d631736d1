"""Token scope escalation: a token only creates, rotates, revokes, lists or shows tokens within
its own scope in every dimension (projects, environments, resources, servers, permissions,
expiry), so a project-scoped token cannot mint its way into another project."""

from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator.db import models
from coordinator.token_scope import Bounds, excess, within
from tests.harness import Coordinator
from tests.unit.coordinator.support import assert_error
from tests.unit.coordinator.test_environments_api import create_environment
from tests.unit.coordinator.test_projects_api import create_project
from tests.unit.coordinator.test_resources_api import create_resource, workspace

MINTER_PERMISSIONS = [
    "deploy-tokens:write",
    "deploy-tokens:read",
    "projects:read",
    "resources:read",
    "resources:write",
]


def _confirm(token_id: str) -> dict[str, Any]:
    return {"confirmation": {"tokenId": token_id}}


async def _mint(
    coordinator: Coordinator,
    token: str,
    scope: dict[str, Any],
    *,
    name: str = "child",
    expires_at: datetime | None = None,
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"displayName": name, "scope": scope}
    if expires_at is not None:
        body["expiresAt"] = expires_at.isoformat()
    status, answer, _ = await coordinator.call("POST", "/deploy-tokens", token=token, json=body)
    return status, answer


async def _minted(
    coordinator: Coordinator,
    token: str,
    scope: dict[str, Any],
    *,
    name: str = "child",
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    status, body = await _mint(coordinator, token, scope, name=name, expires_at=expires_at)
    assert status == 201, body
    return body


async def _refused(
    coordinator: Coordinator,
    token: str,
    scope: dict[str, Any],
    beyond: str,
    *,
    expires_at: datetime | None = None,
) -> None:
    before = await models.ApiToken.all().count()
    response = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=token,
        json={
            "displayName": "wider",
            "scope": scope,
            **({"expiresAt": expires_at.isoformat()} if expires_at else {}),
        },
    )
    error = assert_error(response, 403, "forbidden")
    assert beyond in error["details"]["beyondScope"], error
    assert await models.ApiToken.all().count() == before  # nothing written


async def test_project_scoped_token_cannot_mint_its_way_into_another_project(
    coordinator: Coordinator, admin_token: str
) -> None:
    # The attack from the report: projectIds [A] + deploy-tokens:write mints a token without a
    # project scope, which then reads project B, overwrites its secret and archives its resource.
    project_a, env_a = await workspace(coordinator, admin_token)
    project_b = await create_project(coordinator, admin_token, "Bank")
    env_b = await create_environment(coordinator, admin_token, project_b)
    resource_b = await create_resource(coordinator, admin_token, project_b, env_b, "Vault")
    scoped = await _minted(
        coordinator,
        admin_token,
        {"permissions": MINTER_PERMISSIONS, "projectIds": [project_a]},
        name="project-a",
    )
    token_a = scoped["token"]
    for projects in ([], [project_b], [project_a, project_b]):
        await _refused(
            coordinator,
            token_a,
            {"permissions": MINTER_PERMISSIONS, "projectIds": projects},
            "projectIds",
        )
    # Nothing minted reaches B: the resource, its secret and its state are untouched.
    response = await coordinator.call("GET", f"/resources/{resource_b}", token=token_a)
    assert_error(response, 404, "not_found")
    row = await models.Resource.get(id=resource_b)
    assert row.lifecycle_status == "active"
    # Within its own project it may still mint (the refusals above are not blanket ones).
    child = await _minted(
        coordinator, token_a, {"permissions": ["projects:read"], "projectIds": [project_a]}
    )
    status, shown, _ = await coordinator.call("GET", f"/projects/{project_a}", token=child["token"])
    assert status == 200, shown
    response = await coordinator.call("GET", f"/projects/{project_b}", token=child["token"])
    assert_error(response, 404, "not_found")
    assert env_a


async def test_every_scope_dimension_is_checked(coordinator: Coordinator, admin_token: str) -> None:
    a = await coordinator.add_server(admin_token, "a")
    b = await coordinator.add_server(admin_token, "b")
    parent_scope: dict[str, Any] = {
        "permissions": ["deploy-tokens:write", "servers:read"],
        "projectIds": ["prj_a"],
        "environmentIds": ["env_a"],
        "resourceIds": ["res_a"],
        "deploymentTargetIds": [a["id"]],
    }
    expires = datetime.now(UTC) + timedelta(hours=1)
    parent = (await _minted(coordinator, admin_token, parent_scope, expires_at=expires))["token"]
    ok: dict[str, Any] = {**parent_scope, "permissions": ["servers:read"]}
    for key, wider in (
        ("projectIds", []),
        ("projectIds", ["prj_a", "prj_b"]),
        ("environmentIds", []),
        ("environmentIds", ["env_b"]),
        ("resourceIds", []),
        ("resourceIds", ["res_a", "res_b"]),
        ("deploymentTargetIds", []),
        ("deploymentTargetIds", [b["id"]]),
        ("permissions", ["servers:write"]),
        ("permissions", ["*"]),
    ):
        await _refused(coordinator, parent, {**ok, key: wider}, key, expires_at=expires)
    # A child cannot outlive its parent: no expiry, or a later one, is refused.
    await _refused(coordinator, parent, ok, "expiresAt")
    await _refused(coordinator, parent, ok, "expiresAt", expires_at=expires + timedelta(seconds=1))
    # Exactly the parent's scope, or narrower, is fine.
    await _minted(coordinator, parent, ok, expires_at=expires)
    await _minted(
        coordinator, parent, ok, name="sooner", expires_at=expires - timedelta(minutes=30)
    )


async def test_wider_tokens_are_invisible_and_cannot_be_rotated_or_revoked(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_a = await create_project(coordinator, admin_token, "A")
    project_b = await create_project(coordinator, admin_token, "B")
    narrow_scope = {
        "permissions": ["deploy-tokens:read", "deploy-tokens:write", "projects:read"],
        "projectIds": [project_a],
    }
    narrow = await _minted(coordinator, admin_token, narrow_scope, name="narrow")
    unscoped = await _minted(
        coordinator, admin_token, {"permissions": ["projects:read"]}, name="unscoped"
    )
    other = await _minted(
        coordinator,
        admin_token,
        {"permissions": ["projects:read"], "projectIds": [project_b]},
        name="other",
    )
    inside = await _minted(
        coordinator,
        admin_token,
        {"permissions": ["projects:read"], "projectIds": [project_a]},
        name="inside",
    )
    status, listed, _ = await coordinator.call(
        "GET", "/deploy-tokens?limit=1", token=narrow["token"]
    )
    assert status == 200, listed
    seen: list[str] = [t["tokenId"] for t in listed["items"]]
    while listed["nextCursor"]:
        status, listed, _ = await coordinator.call(
            "GET", f"/deploy-tokens?limit=1&cursor={listed['nextCursor']}", token=narrow["token"]
        )
        assert status == 200, listed
        seen += [t["tokenId"] for t in listed["items"]]
    assert seen == sorted([narrow["tokenId"], inside["tokenId"]])

    for wider in (unscoped, other):
        token_id = wider["tokenId"]
        for method, path, body in (
            ("GET", f"/deploy-tokens/{token_id}", None),
            ("POST", f"/deploy-tokens/{token_id}/rotate", _confirm(token_id)),
            ("POST", f"/deploy-tokens/{token_id}/revoke", _confirm(token_id)),
        ):
            response = await coordinator.call(method, path, token=narrow["token"], json=body)
            assert_error(response, 404, "not_found")
        status, _, _ = await coordinator.call("GET", "/projects", token=wider["token"])
        assert status == 200  # still works: neither rotated nor revoked
    # The admin still sees them all.
    status, listed, _ = await coordinator.call("GET", "/deploy-tokens", token=admin_token)
    assert status == 200
    assert {unscoped["tokenId"], other["tokenId"]} <= {t["tokenId"] for t in listed["items"]}
    # A token within the caller's scope can be rotated and revoked by it.
    token_id = inside["tokenId"]
    status, body, _ = await coordinator.call(
        "POST", f"/deploy-tokens/{token_id}/rotate", token=narrow["token"], json=_confirm(token_id)
    )
    assert status == 200, body
    status, body, _ = await coordinator.call(
        "POST", f"/deploy-tokens/{token_id}/revoke", token=narrow["token"], json=_confirm(token_id)
    )
    assert status == 200, body


def test_within_rule() -> None:
    now = datetime.now(UTC)
    admin = Bounds.of({"permissions": ["*"]}, None)
    scoped = Bounds.of({"permissions": ["projects:read"], "projectIds": ["a"]}, now)
    assert within(scoped, admin)
    assert not within(admin, scoped)
    assert within(scoped, scoped)
    assert excess(Bounds.of({"permissions": ["projects:read"]}, now), scoped) == ["projectIds"]
    assert excess(Bounds.of({"permissions": [], "projectIds": ["a"]}, None), scoped) == [
        "expiresAt"
    ]
    assert excess(
        Bounds.of({"permissions": ["*"], "projectIds": ["a"]}, now - timedelta(1)), scoped
    ) == ["permissions"]
    # Lists the rule knows no meaning for are still never widened.
    repo = Bounds.of({"permissions": [], "repositoryFullNames": ["o/r"]}, None)
    assert excess(Bounds.of({"permissions": []}, None), repo) == ["repositoryFullNames"]


async def test_an_expiry_without_timezone_is_a_400_not_a_500(
    coordinator: Coordinator, admin_token: str
) -> None:
    expiring = await _minted(
        coordinator,
        admin_token,
        {"permissions": ["deploy-tokens:write"]},
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    before = await models.ApiToken.all().count()
    for token in (admin_token, expiring["token"]):
        response = await coordinator.call(
            "POST",
            "/deploy-tokens",
            token=token,
            json={"displayName": "naive", "expiresAt": "2030-01-01T00:00:00"},
        )
        error = assert_error(response, 400, "invalid_request")
        assert error["details"]["problems"][0]["field"] == "expiresAt"
    assert await models.ApiToken.all().count() == before
