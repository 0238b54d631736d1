"""Dependency resources through the API without an agent: validation, masking, scope, plans,
bindings' rules and delete safety (the agent side is tests/integration/test_dependencies_e2e.py)."""

import json
from pathlib import Path
from typing import Any

import pytest

from coordinator.dependencies import kinds
from coordinator.settings import Settings, dependency_images_from_env
from tests.harness import Coordinator
from tests.unit.coordinator.support import assert_error, audit_events, database_dump
from tests.unit.coordinator.test_projects_api import create_project, scoped_token
from tests.unit.coordinator.test_resources_api import create_resource, workspace

IGNORE = {"last_used_at"}
EXTERNAL = "postgres://shop:Very-Secret-pw@db.example.com:6543/shop"


async def _target(coordinator: Coordinator, token: str) -> dict[str, str]:
    project_id, environment_id = await workspace(coordinator, token)
    server = await coordinator.add_server(token, "db-1")
    return {"projectId": project_id, "environmentId": environment_id, "serverId": server["id"]}


async def _import(
    coordinator: Coordinator, token: str, target: dict[str, str], **extra: Any
) -> tuple[int, Any]:
    body = {
        "kind": "postgres",
        "projectId": target["projectId"],
        "environmentId": target["environmentId"],
        "name": "Shop DB",
        "connectionUrl": EXTERNAL,
        **extra,
    }
    status, answer, _ = await coordinator.call(
        "POST", "/dependency-resources/import", token=token, json=body
    )
    return status, answer


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"kind": "mongodb"}, "kind"),
        ({"connectionUrl": "http://db.example.com/shop"}, None),
        ({"connectionUrl": "postgres://"}, None),
        ({"connectionUrl": "postgres://db.example.com:99999/x"}, None),
        ({"connectionUrl": "postgres://u:p@127.0.0.1:5432/x"}, None),
        ({"connectionUrl": "postgres://u:p@10.1.2.3/x"}, None),
        ({"connectionUrl": "postgres://u:p@localhost/x"}, None),
        ({"connectionUrl": "postgres://u:p@[::1]/x"}, None),
        ({"connectionUrl": "postgres://u:p@db.example.com/x y"}, None),
        ({"kind": "redis", "connectionUrl": "redis://db.example.com/abc"}, None),
        ({"kind": "clickhouse", "connectionUrl": "clickhouse://db.example.com/x"}, None),
        ({"name": ""}, "name"),
        ({"name": "!!!"}, None),
    ],
)
async def test_bad_imports_are_refused_and_store_nothing(
    coordinator: Coordinator, admin_token: str, extra: dict[str, Any], field: str | None
) -> None:
    target = await _target(coordinator, admin_token)
    before = await database_dump(ignore=IGNORE)
    body = {
        "kind": "postgres",
        "projectId": target["projectId"],
        "environmentId": target["environmentId"],
        "name": "Shop DB",
        "connectionUrl": EXTERNAL,
        **extra,
    }
    response = await coordinator.call(
        "POST", "/dependency-resources/import", token=admin_token, json=body
    )
    error = assert_error(response, 400, "invalid_request")
    if field is not None:
        assert field in json.dumps(error["details"])
    assert await database_dump(ignore=IGNORE) == before


async def test_an_import_is_ready_masked_and_listed(
    coordinator: Coordinator, admin_token: str
) -> None:
    target = await _target(coordinator, admin_token)
    status, created = await _import(coordinator, admin_token, target)
    assert status == 201, created
    status, shown, _ = await coordinator.call(
        "GET", f"/dependency-resources/{created['id']}", token=admin_token
    )
    assert status == 200, shown
    item = shown["dependencyResource"]
    assert shown["schemaVersion"] == "dependency-resources.show/v1"
    assert item["lifecycleStatus"] == "ready"
    assert (item["sourceMode"], item["providerManaged"]) == ("imported-external", False)
    assert item["connection"] == {
        "host": "db.example.com",
        "port": 6543,
        "databaseName": "shop",
        "maskedConnection": "postgres://shop:****@db.example.com:6543/shop",
        "secretRef": f"dependency-resource/{created['id']}/connection/v1",
    }
    status, listed, _ = await coordinator.call(
        "GET", "/dependency-resources?kind=postgres", token=admin_token
    )
    assert [i["id"] for i in listed["items"]] == [created["id"]]
    assert "Very-Secret-pw" not in json.dumps([shown, listed])
    assert "Very-Secret-pw" not in await database_dump()
    status, counted, _ = await coordinator.call(
        "GET", "/dependency-resources/count?kind=redis", token=admin_token
    )
    assert counted == {"count": 0}
    status, renamed, _ = await coordinator.call(
        "POST",
        f"/dependency-resources/{created['id']}/rename",
        token=admin_token,
        json={"name": "Orders DB"},
    )
    assert (status, renamed) == (200, {"id": created["id"]})
    status, shown, _ = await coordinator.call(
        "GET", f"/dependency-resources/{created['id']}", token=admin_token
    )
    assert (shown["dependencyResource"]["name"], shown["dependencyResource"]["slug"]) == (
        "Orders DB",
        "shop-db",
    )
    events = await audit_events(coordinator, admin_token, aggregateId=created["id"])
    assert [e["eventType"] for e in events] == [
        "dependency-resource.imported",
        "dependency-resource.renamed",
    ]


async def test_another_projects_token_sees_nothing(
    coordinator: Coordinator, admin_token: str
) -> None:
    target = await _target(coordinator, admin_token)
    _, created = await _import(coordinator, admin_token, target)
    other_project = await create_project(coordinator, admin_token, "Other")
    token = await scoped_token(
        coordinator,
        admin_token,
        ["dependency-resources:read", "dependency-resources:write"],
        projectIds=[other_project],
    )
    for method, path, body in (
        ("GET", f"/dependency-resources/{created['id']}", None),
        ("POST", f"/dependency-resources/{created['id']}/rename", {"name": "x"}),
        ("DELETE", f"/dependency-resources/{created['id']}", None),
    ):
        response = await coordinator.call(method, path, token=token, json=body)
        _ = assert_error(response, 404, "not_found")
    status, listed, _ = await coordinator.call("GET", "/dependency-resources", token=token)
    assert listed["items"] == []
    status, answer = await _import(coordinator, token, target)
    _ = assert_error((status, answer, {"X-Request-ID": answer["requestId"]}), 404, "not_found")
    reader = await scoped_token(coordinator, admin_token, ["dependency-resources:read"])
    status, answer = await _import(coordinator, reader, target)
    assert status == 403, answer
    # The audit trail follows the same scope.
    auditors = [
        await scoped_token(coordinator, admin_token, ["audit-events:read"], projectIds=[p])
        for p in (target["projectId"], other_project)
    ]
    seen = [
        [e["aggregateId"] for e in await audit_events(coordinator, auditor)] for auditor in auditors
    ]
    assert created["id"] in seen[0]
    assert created["id"] not in seen[1]


async def test_a_plan_waits_for_acceptance_and_is_accepted_once(
    coordinator: Coordinator, admin_token: str
) -> None:
    target = await _target(coordinator, admin_token)
    body = {"mode": "create", "create": {"kind": "redis", "name": "Cache", **target}}
    status, planned, _ = await coordinator.call(
        "POST", "/dependency-resources/provisioning/plan", token=admin_token, json=body
    )
    assert status == 201, planned
    plan_id = planned["plan"]["id"]
    assert planned["plan"]["status"] == "planned"
    assert any("not published" in line for line in planned["plan"]["summary"])
    status, counted, _ = await coordinator.call(
        "GET", "/dependency-resources/count", token=admin_token
    )
    assert counted == {"count": 0}
    accept = f"/dependency-resources/provisioning/{plan_id}/accept"
    for ack in (False, None):
        response = await coordinator.call(
            "POST",
            accept,
            token=admin_token,
            json={} if ack is None else {"acknowledgeMutation": ack},
        )
        _ = assert_error(response, 400, "invalid_request")
    status, accepted, _ = await coordinator.call(
        "POST", accept, token=admin_token, json={"acknowledgeMutation": True}
    )
    assert status == 200, accepted
    dependency_id = accepted["plan"]["dependencyResourceId"]
    # No agent is connected: it waits, provisioning, for the server's agent.
    status, shown, _ = await coordinator.call(
        "GET", f"/dependency-resources/{dependency_id}", token=admin_token
    )
    assert shown["dependencyResource"]["lifecycleStatus"] == "provisioning"
    assert shown["dependencyResource"]["bindingReadiness"]["status"] == "blocked"
    masked = shown["dependencyResource"]["connection"]["maskedConnection"]
    assert masked.startswith("redis://default:****@berth-dep-")
    response = await coordinator.call(
        "POST", accept, token=admin_token, json={"acknowledgeMutation": True}
    )
    _ = assert_error(response, 409, "conflict")
    status, again, _ = await coordinator.call(
        "GET", f"/dependency-resources/provisioning/{plan_id}", token=admin_token
    )
    assert again["plan"]["status"] == "accepted"


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "oracle"},
        {"kind": "opensearch"},
        {"serverId": None},
        {"serverId": "srv_missing"},
        {"environmentId": "env_missing"},
    ],
)
async def test_bad_provisions_are_refused_and_store_nothing(
    coordinator: Coordinator, admin_token: str, change: dict[str, Any]
) -> None:
    target = await _target(coordinator, admin_token)
    before = await database_dump(ignore=IGNORE)
    body = {"kind": "postgres", "name": "Main", **target, **change}
    status, answer, headers = await coordinator.call(
        "POST", "/dependency-resources/provision", token=admin_token, json=body
    )
    assert status in (400, 404), answer
    _ = assert_error(
        (status, answer, headers), status, "invalid_request" if status == 400 else "not_found"
    )
    assert await database_dump(ignore=IGNORE) == before


async def test_bindings_need_a_ready_dependency_and_block_its_delete(
    coordinator: Coordinator, admin_token: str
) -> None:
    target = await _target(coordinator, admin_token)
    _, created = await _import(coordinator, admin_token, target)
    resource_id = await create_resource(
        coordinator, admin_token, target["projectId"], target["environmentId"]
    )
    path = f"/resources/{resource_id}/dependency-bindings"
    before = await database_dump(ignore=IGNORE)
    for body, status, code in (
        ({"dependencyResourceId": created["id"], "targetName": "1BAD"}, 400, "invalid_request"),
        ({"dependencyResourceId": created["id"], "targetName": "A=B"}, 400, "invalid_request"),
        ({"dependencyResourceId": "dbr_missing", "targetName": "DATABASE_URL"}, 404, "not_found"),
    ):
        response = await coordinator.call("POST", path, token=admin_token, json=body)
        _ = assert_error(response, status, code)
    assert await database_dump(ignore=IGNORE) == before
    body = {"dependencyResourceId": created["id"], "targetName": "DATABASE_URL"}
    status, bound, _ = await coordinator.call("POST", path, token=admin_token, json=body)
    assert status == 201, bound
    response = await coordinator.call("POST", path, token=admin_token, json=body)
    _ = assert_error(response, 409, "conflict")
    status, shown, _ = await coordinator.call("GET", f"{path}/{bound['id']}", token=admin_token)
    binding = shown["binding"]
    assert shown["schemaVersion"] == "resources.dependency-bindings.show/v1"
    assert binding["target"] == {
        "targetName": "DATABASE_URL",
        "scope": "environment",
        "injectionMode": "env",
        "secretRef": f"dependency-resource/{created['id']}/connection/v1",
    }
    assert "Very-Secret-pw" not in json.dumps(shown)

    before = await database_dump(ignore=IGNORE)
    response = await coordinator.call(
        "DELETE", f"/dependency-resources/{created['id']}", token=admin_token
    )
    error = assert_error(response, 409, "conflict")
    assert error["details"]["blockers"][0]["relatedEntityId"] == resource_id
    assert await database_dump(ignore=IGNORE) == before

    # Rotation: confirmation required; an imported database rotates at its provider.
    rotations = f"{path}/{bound['id']}/secret-rotations"
    for body, status, code in (
        ({"confirmHistoricalSnapshotsRemainUnchanged": False}, 400, "invalid_request"),
        ({}, 400, "invalid_request"),
        ({"confirmHistoricalSnapshotsRemainUnchanged": True}, 409, "conflict"),
    ):
        response = await coordinator.call("POST", rotations, token=admin_token, json=body)
        _ = assert_error(response, status, code)
    assert await database_dump(ignore=IGNORE) == before

    status, _, _ = await coordinator.call("DELETE", f"{path}/{bound['id']}", token=admin_token)
    assert status == 200
    status, listed, _ = await coordinator.call("GET", path, token=admin_token)
    assert listed["items"] == []
    status, _, _ = await coordinator.call(
        "DELETE", f"/dependency-resources/{created['id']}", token=admin_token
    )
    assert status == 200
    response = await coordinator.call(
        "GET", f"/dependency-resources/{created['id']}", token=admin_token
    )
    _ = assert_error(response, 404, "not_found")


def test_masking_hides_only_the_password() -> None:
    assert kinds.masked("redis://:pw@h:6379/0") == "redis://:****@h:6379/0"
    assert kinds.masked("postgres://u:p%40ss@h/db") == "postgres://u:****@h/db"
    assert kinds.masked("postgres://h/db") == "postgres://h/db"


def test_images_per_kind_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_DEPENDENCY_IMAGE_POSTGRES", "registry.local/pg:15")
    monkeypatch.delenv("BERTH_DEPENDENCY_IMAGE_REDIS", raising=False)
    monkeypatch.setenv("BERTH_DEPENDENCY_IMAGE_MYSQL", "")
    found = dependency_images_from_env()
    assert found == {"dependency_image_postgres": "registry.local/pg:15"}
    settings = Settings(data_dir=Path("/nonexistent"), **found)
    assert (
        settings.dependency_image_postgres,
        settings.dependency_image_redis,
        settings.dependency_image_mysql,
    ) == ("registry.local/pg:15", "redis:7", "mariadb:11")
