"""Projects API: create, slug, list, count, show, rename, describe, archive, restore, delete."""

from datetime import UTC, datetime
from typing import Any

import pytest

from coordinator.db import models
from coordinator.ids import new_id
from tests.harness import Coordinator
from tests.unit.coordinator.support import assert_error, audit_events, parse_time, problem_fields

ITEM_KEYS = {
    "id",
    "organizationId",
    "name",
    "slug",
    "description",
    "lifecycleStatus",
    "archivedAt",
    "archiveReason",
    "createdAt",
}


async def create_project(coordinator: Coordinator, token: str, name: str, **extra: Any) -> str:
    """Create a project through the API; return its id."""
    status, body, _ = await coordinator.call(
        "POST", "/projects", token=token, json={"name": name, **extra}
    )
    assert status == 201, body
    assert set(body) == {"id"}
    return str(body["id"])


async def scoped_token(
    coordinator: Coordinator, admin_token: str, permissions: list[str], **scope: list[str]
) -> str:
    """A deploy token with ``permissions`` and extra scope lists (``projectIds``...)."""
    status, body, _ = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=admin_token,
        json={"displayName": "scoped", "scope": {"permissions": permissions, **scope}},
    )
    assert status == 201, body
    return str(body["token"])


async def _show(coordinator: Coordinator, token: str, project_id: str) -> dict[str, Any]:
    status, body, _ = await coordinator.call("GET", f"/projects/{project_id}", token=token)
    assert status == 200, body
    return dict(body)


async def test_create_derives_the_slug_and_shows_the_item(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id = await create_project(
        coordinator, admin_token, "My Café (EU)", description="the shop"
    )
    assert project_id.startswith("prj_")
    item = await _show(coordinator, admin_token, project_id)
    assert set(item) == ITEM_KEYS
    assert item["id"] == project_id
    assert item["name"] == "My Café (EU)"
    assert item["slug"] == "my-cafe-eu"
    assert item["description"] == "the shop"
    assert item["lifecycleStatus"] == "active"
    assert item["archivedAt"] is None
    assert item["archiveReason"] is None
    assert abs((parse_time(item["createdAt"]) - datetime.now(UTC)).total_seconds()) < 60
    row = await models.Project.get(id=project_id)
    assert item["organizationId"] == row.organization_id  # type: ignore[attr-defined]

    events = await audit_events(coordinator, admin_token, aggregateId=project_id)
    assert [e["eventType"] for e in events] == ["project.created"]
    assert events[0]["payload"] == {"name": "My Café (EU)", "slug": "my-cafe-eu"}


async def test_duplicate_slug_is_a_conflict(coordinator: Coordinator, admin_token: str) -> None:
    await create_project(coordinator, admin_token, "My Shop")
    response = await coordinator.call(
        "POST", "/projects", token=admin_token, json={"name": "my  shop!"}
    )
    error = assert_error(response, 409, "conflict")
    assert error["details"] == {"slug": "my-shop"}
    assert await models.Project.all().count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "!!!"}, "name"),
        ({}, "name"),
        ({"name": "ok", "slug": "forced"}, "slug"),
        ({"name": "ok", "description": "d" * 2001}, "description"),
    ],
)
async def test_invalid_create_bodies_are_400(
    coordinator: Coordinator, admin_token: str, body: dict[str, Any], field: str
) -> None:
    response = await coordinator.call("POST", "/projects", token=admin_token, json=body)
    error = assert_error(response, 400, "invalid_request")
    assert problem_fields(error) == {field}
    assert await models.Project.all().count() == 0


async def test_list_paginates_filters_and_counts(
    coordinator: Coordinator, admin_token: str
) -> None:
    ids = [await create_project(coordinator, admin_token, f"p{i}") for i in range(3)]
    status, page, _ = await coordinator.call("GET", "/projects?limit=2", token=admin_token)
    assert status == 200, page
    assert set(page) == {"items", "nextCursor"}
    assert [p["id"] for p in page["items"]] == ids[:2]
    assert all(set(p) == ITEM_KEYS for p in page["items"])
    status, rest, _ = await coordinator.call(
        "GET", f"/projects?limit=2&cursor={page['nextCursor']}", token=admin_token
    )
    assert status == 200, rest
    assert [p["id"] for p in rest["items"]] == ids[2:]
    assert rest["nextCursor"] is None

    status, _, _ = await coordinator.call(
        "POST", f"/projects/{ids[1]}/archive", token=admin_token, json={}
    )
    assert status == 200
    for wanted, expected in (("archived", [ids[1]]), ("active", [ids[0], ids[2]])):
        status, body, _ = await coordinator.call(
            "GET", f"/projects?lifecycleStatus={wanted}", token=admin_token
        )
        assert status == 200, body
        assert [p["id"] for p in body["items"]] == expected

    status, counted, _ = await coordinator.call("GET", "/projects/count", token=admin_token)
    assert (status, counted) == (200, {"count": 3})

    for query in ("limit=0", "limit=501", "lifecycleStatus=deleted", "unknown=1"):
        response = await coordinator.call("GET", f"/projects?{query}", token=admin_token)
        assert_error(response, 400, "invalid_request")


async def test_rename_follows_with_the_slug_and_refuses_duplicates(
    coordinator: Coordinator, admin_token: str
) -> None:
    first = await create_project(coordinator, admin_token, "alpha")
    await create_project(coordinator, admin_token, "beta")
    status, body, _ = await coordinator.call(
        "POST", f"/projects/{first}/rename", token=admin_token, json={"name": "Alpha Two"}
    )
    assert (status, body) == (200, {"id": first})
    item = await _show(coordinator, admin_token, first)
    assert (item["name"], item["slug"]) == ("Alpha Two", "alpha-two")

    response = await coordinator.call(
        "POST", f"/projects/{first}/rename", token=admin_token, json={"name": "BETA"}
    )
    assert_error(response, 409, "conflict")
    assert (await _show(coordinator, admin_token, first))["name"] == "Alpha Two"

    events = await audit_events(coordinator, admin_token, eventType="project.renamed")
    assert [e["payload"] for e in events] == [
        {"from": "alpha", "to": "Alpha Two", "slug": "alpha-two"}
    ]


async def test_description_is_set_and_cleared(coordinator: Coordinator, admin_token: str) -> None:
    project_id = await create_project(coordinator, admin_token, "shop")
    path = f"/projects/{project_id}/description"
    status, body, _ = await coordinator.call(
        "POST", path, token=admin_token, json={"description": "x"}
    )
    assert (status, body) == (200, {"id": project_id})
    assert (await _show(coordinator, admin_token, project_id))["description"] == "x"
    status, _, _ = await coordinator.call("POST", path, token=admin_token, json={})
    assert status == 200
    assert (await _show(coordinator, admin_token, project_id))["description"] is None
    events = await audit_events(coordinator, admin_token, eventType="project.description-changed")
    assert len(events) == 2


async def test_archive_makes_the_project_read_only_until_restored(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id = await create_project(coordinator, admin_token, "shop")
    status, body, _ = await coordinator.call(
        "POST", f"/projects/{project_id}/archive", token=admin_token, json={"reason": "sunset"}
    )
    assert (status, body) == (200, {"id": project_id})
    item = await _show(coordinator, admin_token, project_id)
    assert item["lifecycleStatus"] == "archived"
    assert item["archiveReason"] == "sunset"
    assert item["archivedAt"] is not None

    for suffix, json in (("rename", {"name": "other"}), ("description", {"description": "d"})):
        response = await coordinator.call(
            "POST", f"/projects/{project_id}/{suffix}", token=admin_token, json=json
        )
        error = assert_error(response, 409, "conflict")
        assert error["message"] == "project is archived: sunset"
    response = await coordinator.call(
        "POST",
        "/environments",
        token=admin_token,
        json={"projectId": project_id, "name": "production"},
    )
    assert_error(response, 409, "conflict")

    # Archiving again changes nothing (no second event); restore clears the archive fields.
    status, _, _ = await coordinator.call(
        "POST", f"/projects/{project_id}/archive", token=admin_token, json={"reason": "again"}
    )
    assert status == 200
    assert (await _show(coordinator, admin_token, project_id))["archiveReason"] == "sunset"
    status, body, _ = await coordinator.call(
        "POST", f"/projects/{project_id}/restore", token=admin_token
    )
    assert (status, body) == (200, {"id": project_id})
    item = await _show(coordinator, admin_token, project_id)
    assert (item["lifecycleStatus"], item["archivedAt"], item["archiveReason"]) == (
        "active",
        None,
        None,
    )
    events = await audit_events(coordinator, admin_token, aggregateId=project_id)
    assert [e["eventType"] for e in events] == [
        "project.created",
        "project.archived",
        "project.restored",
    ]


async def test_delete_check_and_delete(coordinator: Coordinator, admin_token: str) -> None:
    project_id = await create_project(coordinator, admin_token, "shop")
    status, env, _ = await coordinator.call(
        "POST", "/environments", token=admin_token, json={"projectId": project_id, "name": "prod"}
    )
    assert status == 201, env
    status, _, _ = await coordinator.call(
        "POST",
        f"/environments/{env['id']}/variables",
        token=admin_token,
        json={"key": "A", "value": "1", "exposure": "runtime"},
    )
    assert status == 200

    status, check, _ = await coordinator.call(
        "GET", f"/projects/{project_id}/delete-check", token=admin_token
    )
    assert status == 200, check
    assert check["schemaVersion"] == "projects.delete-check/v1"
    assert (check["projectId"], check["lifecycleStatus"], check["eligible"]) == (
        project_id,
        "active",
        False,
    )
    assert check["blockers"] == [
        {
            "kind": "active-project",
            "relatedEntityId": project_id,
            "relatedEntityType": "project",
            "count": 1,
        }
    ]
    confirmation = {"confirmation": {"projectId": project_id}}
    response = await coordinator.call(
        "DELETE", f"/projects/{project_id}", token=admin_token, json=confirmation
    )
    error = assert_error(response, 409, "conflict")
    assert error["details"]["blockers"] == check["blockers"]

    status, _, _ = await coordinator.call(
        "POST", f"/projects/{project_id}/archive", token=admin_token, json={}
    )
    assert status == 200
    status, check, _ = await coordinator.call(
        "GET", f"/projects/{project_id}/delete-check", token=admin_token
    )
    assert (check["eligible"], check["blockers"], check["lifecycleStatus"]) == (
        True,
        [],
        "archived",
    )

    response = await coordinator.call(
        "DELETE",
        f"/projects/{project_id}",
        token=admin_token,
        json={"confirmation": {"projectId": "prj_other"}},
    )
    assert_error(response, 400, "invalid_request")
    status, body, _ = await coordinator.call(
        "DELETE", f"/projects/{project_id}", token=admin_token, json=confirmation
    )
    assert (status, body) == (200, {"id": project_id})
    assert not await models.Project.exists(id=project_id)
    assert not await models.Environment.exists(id=env["id"])
    assert not await models.Variable.exists(owner_id=env["id"])
    response = await coordinator.call("GET", f"/projects/{project_id}", token=admin_token)
    assert_error(response, 404, "not_found")
    events = await audit_events(coordinator, admin_token, eventType="project.deleted")
    assert [e["payload"] for e in events] == [
        {"name": "shop", "slug": "shop", "environments": 1, "resources": 0}
    ]


async def test_live_resources_block_deletion(coordinator: Coordinator, admin_token: str) -> None:
    project_id = await create_project(coordinator, admin_token, "shop")
    status, env, _ = await coordinator.call(
        "POST", "/environments", token=admin_token, json={"projectId": project_id, "name": "prod"}
    )
    assert status == 201, env
    resource = await models.Resource.create(
        id=new_id("res"),
        project_id=project_id,
        environment_id=env["id"],
        name="web",
        slug="web",
        created_at=datetime.now(UTC),
    )
    status, _, _ = await coordinator.call(
        "POST", f"/projects/{project_id}/archive", token=admin_token, json={}
    )
    assert status == 200
    status, check, _ = await coordinator.call(
        "GET", f"/projects/{project_id}/delete-check", token=admin_token
    )
    assert check["blockers"] == [
        {"kind": "resources", "relatedEntityId": None, "relatedEntityType": "resource", "count": 1}
    ]
    await models.Resource.filter(id=resource.id).update(lifecycle_status="archived")
    status, body, _ = await coordinator.call(
        "DELETE",
        f"/projects/{project_id}",
        token=admin_token,
        json={"confirmation": {"projectId": project_id}},
    )
    assert (status, body) == (200, {"id": project_id})
    assert not await models.Resource.exists(id=resource.id)


@pytest.mark.parametrize(
    ("method", "suffix", "json"),
    [
        ("GET", "", None),
        ("POST", "/rename", {"name": "x"}),
        ("POST", "/description", {}),
        ("POST", "/archive", {}),
        ("POST", "/restore", None),
        ("GET", "/delete-check", None),
        ("DELETE", "", {"confirmation": {"projectId": "prj_missing"}}),
    ],
)
async def test_unknown_project_is_404(
    coordinator: Coordinator, admin_token: str, method: str, suffix: str, json: Any
) -> None:
    response = await coordinator.call(
        method, f"/projects/prj_missing{suffix}", token=admin_token, json=json
    )
    assert_error(response, 404, "not_found")


async def test_project_scoped_token_sees_only_its_projects(
    coordinator: Coordinator, admin_token: str
) -> None:
    mine = await create_project(coordinator, admin_token, "mine")
    other = await create_project(coordinator, admin_token, "other")
    token = await scoped_token(
        coordinator, admin_token, ["projects:read", "projects:write"], projectIds=[mine]
    )
    status, body, _ = await coordinator.call("GET", "/projects", token=token)
    assert status == 200, body
    assert [p["id"] for p in body["items"]] == [mine]
    status, body, _ = await coordinator.call("GET", "/projects/count", token=token)
    assert (status, body) == (200, {"count": 1})
    await _show(coordinator, token, mine)
    for method, suffix, json in (
        ("GET", "", None),
        ("POST", "/rename", {"name": "stolen"}),
        ("POST", "/archive", {}),
        ("GET", "/delete-check", None),
    ):
        response = await coordinator.call(
            method, f"/projects/{other}{suffix}", token=token, json=json
        )
        assert_error(response, 404, "not_found")
    response = await coordinator.call("POST", "/projects", token=token, json={"name": "new"})
    assert_error(response, 403, "forbidden")
    assert (await models.Project.get(id=other)).name == "other"


async def test_permissions_are_enforced(coordinator: Coordinator, admin_token: str) -> None:
    project_id = await create_project(coordinator, admin_token, "shop")
    reader = await scoped_token(coordinator, admin_token, ["projects:read"])
    outsider = await scoped_token(coordinator, admin_token, ["servers:read"])
    await _show(coordinator, reader, project_id)
    response = await coordinator.call(
        "POST", f"/projects/{project_id}/rename", token=reader, json={"name": "x"}
    )
    error = assert_error(response, 403, "forbidden")
    assert error["details"] == {"requiredPermission": "projects:write"}
    response = await coordinator.call("GET", "/projects", token=outsider)
    assert_error(response, 403, "forbidden")
    response = await coordinator.call("GET", "/projects")
    assert_error(response, 401, "unauthorized")
