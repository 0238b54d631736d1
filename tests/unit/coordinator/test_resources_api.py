"""Resources API: lifecycle, profiles, source validation, variables and secrets, delete rules."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coordinator.db import models
from coordinator.ids import new_id
from coordinator.resource_config import load_resource_config
from coordinator.secrets import Keyring
from tests.harness import Coordinator
from tests.unit.coordinator.support import (
    assert_error,
    audit_events,
    database_dump,
    on_postgres,
    problem_fields,
)
from tests.unit.coordinator.test_environments_api import (
    create_environment,
    set_variable as set_env_variable,
)
from tests.unit.coordinator.test_projects_api import create_project, scoped_token

SECRET = "r3source-S3cret-Plaintext-9f8e7d"
ROTATED = "r0tated-S3cret-Plaintext-1a2b3c"
SHOW_KEYS = {
    "schemaVersion",
    "resource",
    "source",
    "runtimeProfile",
    "networkProfile",
    "accessProfile",
    "healthPolicy",
    "lifecycle",
    "storageAttachments",
    "latestDeployment",
    "accessSummary",
    "diagnostics",
    "generatedAt",
}
ITEM_KEYS = {
    "id",
    "projectId",
    "environmentId",
    "destinationId",
    "name",
    "slug",
    "kind",
    "description",
    "lifecycleStatus",
    "createdAt",
    "services",
    "networkProfile",
    "accessProfile",
    "deploymentCount",
    "lastDeploymentId",
    "lastDeploymentStatus",
    "accessSummary",
    "latestRuntimeControl",
}


async def workspace(coordinator: Coordinator, token: str) -> tuple[str, str]:
    """A fresh project with a ``production`` environment: (projectId, environmentId)."""
    project_id = await create_project(coordinator, token, "Shop")
    return project_id, await create_environment(coordinator, token, project_id)


async def create_resource(
    coordinator: Coordinator,
    token: str,
    project_id: str,
    environment_id: str,
    name: str = "Web App",
    **extra: Any,
) -> str:
    """``POST /resources``; return the id."""
    status, body, _ = await coordinator.call(
        "POST",
        "/resources",
        token=token,
        json={"projectId": project_id, "environmentId": environment_id, "name": name, **extra},
    )
    assert status == 201, body
    assert set(body) == {"id"}
    assert body["id"].startswith("res_")
    return str(body["id"])


async def show(coordinator: Coordinator, token: str, resource_id: str) -> dict[str, Any]:
    """``GET /resources/{id}``."""
    status, body, _ = await coordinator.call("GET", f"/resources/{resource_id}", token=token)
    assert status == 200, body
    return dict(body)


@pytest.fixture
async def resource(coordinator: Coordinator, admin_token: str) -> dict[str, str]:
    """An active resource in a fresh project and environment."""
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    return {"project": project_id, "environment": environment_id, "id": resource_id}


async def test_create_show_list_count(coordinator: Coordinator, admin_token: str) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(
        coordinator, admin_token, project_id, environment_id, "Web App (EU)", description="d"
    )
    body = await show(coordinator, admin_token, resource_id)
    assert set(body) == SHOW_KEYS
    assert body["schemaVersion"] == "resources.show/v1"
    item = body["resource"]
    assert set(item) == ITEM_KEYS
    assert item["slug"] == "web-app-eu"
    assert item["name"] == "Web App (EU)"
    assert item["kind"] == "application"
    assert item["description"] == "d"
    assert (item["projectId"], item["environmentId"]) == (project_id, environment_id)
    assert item["deploymentCount"] == 0
    assert item["lastDeploymentId"] is None
    assert body["source"] is None
    assert body["latestDeployment"] is None
    assert body["lifecycle"] == {"status": "active", "archivedAt": None, "deletedAt": None}
    assert body["runtimeProfile"]["strategy"] == "auto"
    assert body["runtimeProfile"]["replicas"] == 1
    assert body["networkProfile"]["internalPort"] == 80
    assert body["healthPolicy"]["http"]["path"] == "/"
    assert body["accessProfile"] == {"generatedAccessMode": "inherit", "pathPrefix": "/"}

    other_env = await create_environment(coordinator, admin_token, project_id, "staging")
    other = await create_resource(coordinator, admin_token, project_id, other_env, "Worker")
    status, listed, _ = await coordinator.call("GET", "/resources", token=admin_token)
    assert status == 200, listed
    assert [r["id"] for r in listed["items"]] == [resource_id, other]
    assert listed["nextCursor"] is None
    status, page, _ = await coordinator.call(
        "GET", f"/resources?environmentId={other_env}", token=admin_token
    )
    assert [r["id"] for r in page["items"]] == [other]
    status, page, _ = await coordinator.call("GET", "/resources?limit=1", token=admin_token)
    assert [r["id"] for r in page["items"]] == [resource_id]
    assert page["nextCursor"] == resource_id
    for query, expected in (("", 2), (f"?environmentId={environment_id}", 1), ("?projectId=x", 0)):
        status, counted, _ = await coordinator.call(
            "GET", f"/resources/count{query}", token=admin_token
        )
        assert (status, counted) == (200, {"count": expected})

    events = await audit_events(coordinator, admin_token)
    created = [e for e in events if e["eventType"] == "resource.created"]
    assert [e["aggregateId"] for e in created] == [resource_id, other]
    assert created[0]["payload"]["slug"] == "web-app-eu"


async def test_slug_is_unique_per_environment(coordinator: Coordinator, admin_token: str) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    await create_resource(coordinator, admin_token, project_id, environment_id, "Web App")
    response = await coordinator.call(
        "POST",
        "/resources",
        token=admin_token,
        json={"projectId": project_id, "environmentId": environment_id, "name": "web  app"},
    )
    error = assert_error(response, 409, "conflict")
    assert error["details"]["slug"] == "web-app"
    staging = await create_environment(coordinator, admin_token, project_id, "staging")
    await create_resource(coordinator, admin_token, project_id, staging, "Web App")


async def test_create_validation_and_state_rules(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    base = {"projectId": project_id, "environmentId": environment_id}
    for body, fields in (
        ({**base}, {"name"}),
        ({**base, "name": ""}, {"name"}),
        ({**base, "name": "a", "kind": "database"}, {"kind"}),
        ({**base, "name": "a", "colour": "red"}, {"colour"}),
        ({**base, "name": "!!!"}, {"name"}),
    ):
        response = await coordinator.call("POST", "/resources", token=admin_token, json=body)
        assert problem_fields(assert_error(response, 400, "invalid_request")) == fields, body

    other_project = await create_project(coordinator, admin_token, "Other")
    response = await coordinator.call(
        "POST",
        "/resources",
        token=admin_token,
        json={"projectId": other_project, "environmentId": environment_id, "name": "x"},
    )
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {"environmentId"}
    response = await coordinator.call(
        "POST",
        "/resources",
        token=admin_token,
        json={**base, "environmentId": "env_nope", "name": "x"},
    )
    assert_error(response, 404, "not_found")

    status, _, _ = await coordinator.call(
        "POST", f"/environments/{environment_id}/lock", token=admin_token, json={"reason": "freeze"}
    )
    assert status == 200
    response = await coordinator.call(
        "POST", "/resources", token=admin_token, json={**base, "name": "x"}
    )
    assert "locked" in assert_error(response, 409, "conflict")["message"]
    status, _, _ = await coordinator.call(
        "POST", f"/environments/{environment_id}/unlock", token=admin_token, json={}
    )
    assert status == 200
    status, _, _ = await coordinator.call(
        "POST", f"/projects/{project_id}/archive", token=admin_token, json={}
    )
    assert status == 200
    response = await coordinator.call(
        "POST", "/resources", token=admin_token, json={**base, "name": "x"}
    )
    assert "archived" in assert_error(response, 409, "conflict")["message"]
    status, counted, _ = await coordinator.call("GET", "/resources/count", token=admin_token)
    assert counted == {"count": 0}


async def test_unknown_ids_are_404(
    coordinator: Coordinator, admin_token: str, resource: dict[str, str]
) -> None:
    for method, path, body in (
        ("GET", "/resources/res_missing", None),
        (
            "POST",
            "/resources/res_missing/network-profile",
            {"networkProfile": {"internalPort": 80}},
        ),
        ("POST", "/resources/res_missing/archive", {}),
        ("GET", "/resources/res_missing/secrets", None),
        ("GET", "/resources/res_missing/effective-config", None),
        ("GET", f"/resources/{resource['id']}/secrets/NOPE", None),
        ("POST", f"/resources/{resource['id']}/secrets/NOPE", {"value": "v"}),
        ("DELETE", f"/resources/{resource['id']}/secrets/NOPE", None),
        ("DELETE", f"/resources/{resource['id']}/variables/NOPE", {"exposure": "runtime"}),
    ):
        response = await coordinator.call(method, path, token=admin_token, json=body)
        assert_error(response, 404, "not_found")


async def test_permissions_and_scopes(
    coordinator: Coordinator, admin_token: str, resource: dict[str, str]
) -> None:
    reader = await scoped_token(coordinator, admin_token, ["resources:read"])
    status, _, _ = await coordinator.call("GET", f"/resources/{resource['id']}", token=reader)
    assert status == 200
    for method, path, body in (
        (
            "POST",
            f"/resources/{resource['id']}/network-profile",
            {"networkProfile": {"internalPort": 8080}},
        ),
        ("POST", f"/resources/{resource['id']}/secrets", {"key": "K", "value": "v"}),
        (
            "POST",
            "/resources",
            {
                "projectId": resource["project"],
                "environmentId": resource["environment"],
                "name": "n",
            },
        ),
    ):
        error = assert_error(
            await coordinator.call(method, path, token=reader, json=body), 403, "forbidden"
        )
        assert error["details"]["requiredPermission"] == "resources:write"
    nobody = await scoped_token(coordinator, admin_token, ["projects:read"])
    for path in (
        "/resources",
        f"/resources/{resource['id']}",
        f"/resources/{resource['id']}/secrets",
    ):
        assert_error(await coordinator.call("GET", path, token=nobody), 403, "forbidden")
    assert_error(await coordinator.call("GET", "/resources"), 401, "unauthorized")
    # A token scoped to another resource sees this one as missing.
    elsewhere = await scoped_token(
        coordinator, admin_token, ["resources:read"], resourceIds=["res_other"]
    )
    assert_error(
        await coordinator.call("GET", f"/resources/{resource['id']}", token=elsewhere),
        404,
        "not_found",
    )
    status, listed, _ = await coordinator.call("GET", "/resources", token=elsewhere)
    assert listed["items"] == []


async def test_profiles_are_stored_shown_and_audited(
    coordinator: Coordinator, admin_token: str, resource: dict[str, str]
) -> None:
    rid = resource["id"]
    calls: list[tuple[str, dict[str, Any]]] = [
        (
            "runtime-profile",
            {"runtimeProfile": {"strategy": "dockerfile", "startCommand": "serve", "replicas": 2}},
        ),
        ("network-profile", {"networkProfile": {"internalPort": 8080, "exposureMode": "none"}}),
        ("health-policy", {"healthCheck": {"intervalSeconds": 1, "http": {"path": "/healthz"}}}),
        ("access-profile", {"accessProfile": {"pathPrefix": "/app"}}),
    ]
    for path, body in calls:
        status, answer, _ = await coordinator.call(
            "POST", f"/resources/{rid}/{path}", token=admin_token, json=body
        )
        assert (status, answer) == (200, {"id": rid}), answer
    shown = await show(coordinator, admin_token, rid)
    assert shown["runtimeProfile"] == {
        "strategy": "dockerfile",
        "startCommand": "serve",
        "dockerfilePath": "Dockerfile",
        "buildTarget": None,
        "cpus": None,
        "memoryBytes": None,
        "replicas": 2,
        "rolloutStrategy": "blue-green",
        # The reference shows the health check in the runtime profile too: the same policy.
        "healthCheckPath": "/healthz",
        "healthCheck": shown["healthPolicy"],
    }
    assert shown["networkProfile"]["internalPort"] == 8080
    assert shown["networkProfile"]["exposureMode"] == "none"
    assert shown["resource"]["networkProfile"] == shown["networkProfile"]
    assert shown["healthPolicy"]["intervalSeconds"] == 1
    assert shown["healthPolicy"]["http"]["path"] == "/healthz"
    assert shown["healthPolicy"]["http"]["method"] == "GET"
    assert shown["accessProfile"]["pathPrefix"] == "/app"
    # Never deployed, and exposure "none": no route now or next.
    assert shown["accessSummary"] == {
        "plannedGeneratedAccessRoute": None,
        "latestGeneratedAccessRoute": None,
        "latestDurableDomainRoute": None,
        "latestServerAppliedDomainRoute": None,
        "proxyRouteStatus": "not-configured",
        "lastRouteRealizationDeploymentId": None,
        "latestAccessFailureDiagnostic": None,
    }
    row = await models.Resource.get(id=rid)
    assert row.network_profile is not None
    assert row.network_profile["internalPort"] == 8080  # camelCase, as the agreement says

    status, _, _ = await coordinator.call(
        "POST", f"/resources/{rid}/health-policy/reset", token=admin_token, json={}
    )
    assert status == 200
    assert (await show(coordinator, admin_token, rid))["healthPolicy"]["http"]["path"] == "/"
    events = await audit_events(coordinator, admin_token)
    types = [e["eventType"] for e in events if e["aggregateId"] == rid]
    assert types == [
        "resource.created",
        "resource.runtime-profile-configured",
        "resource.network-profile-configured",
        "resource.health-policy-configured",
        "resource.access-profile-configured",
        "resource.health-policy-reset",
    ]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("network-profile", {"networkProfile": {"internalPort": 0}}, "networkProfile.internalPort"),
        (
            "network-profile",
            {"networkProfile": {"internalPort": 65536}},
            "networkProfile.internalPort",
        ),
        ("network-profile", {"networkProfile": {}}, "networkProfile.internalPort"),
        ("runtime-profile", {"runtimeProfile": {"replicas": 0}}, "runtimeProfile.replicas"),
        (
            "runtime-profile",
            {"runtimeProfile": {"dockerfilePath": "../x"}},
            "runtimeProfile.dockerfilePath",
        ),
        ("runtime-profile", {"runtimeProfile": {"strategy": "magic"}}, "runtimeProfile.strategy"),
        ("health-policy", {"healthCheck": {"http": {"path": "nope"}}}, "healthCheck.http.path"),
        ("health-policy", {"healthCheck": {"retries": 0}}, "healthCheck.retries"),
    ],
)
async def test_profile_validation(
    coordinator: Coordinator,
    admin_token: str,
    resource: dict[str, str],
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    response = await coordinator.call(
        "POST", f"/resources/{resource['id']}/{path}", token=admin_token, json=body
    )
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {field}
    assert (await models.Resource.get(id=resource["id"])).network_profile is None


@pytest.mark.parametrize(
    ("reference", "stored"),
    [
        ("nginx", {"imageName": "nginx", "imageTag": "latest"}),
        ("berth-test/busybox:1.36", {"imageName": "berth-test/busybox", "imageTag": "1.36"}),
        (
            "localhost:5000/team/app_x:v1.2-rc",
            {"imageName": "localhost:5000/team/app_x", "imageTag": "v1.2-rc"},
        ),
        (
            "ghcr.io/org/app@sha256:" + "a" * 64,
            {"imageName": "ghcr.io/org/app", "imageDigest": "sha256:" + "a" * 64},
        ),
    ],
)
async def test_docker_image_source_is_parsed(
    coordinator: Coordinator,
    admin_token: str,
    resource: dict[str, str],
    reference: str,
    stored: dict[str, str],
) -> None:
    rid = resource["id"]
    status, body, _ = await coordinator.call(
        "POST",
        f"/resources/{rid}/source",
        token=admin_token,
        json={"source": {"kind": "docker-image", "imageName": reference}, "idempotencyKey": "k1"},
    )
    assert (status, body) == (200, {"id": rid})
    assert (await show(coordinator, admin_token, rid))["source"] == {
        "kind": "docker-image",
        **stored,
    }


@pytest.mark.parametrize(
    "source",
    [
        {"kind": "docker-image", "imageName": "Nginx"},
        {"kind": "docker-image", "imageName": "nginx:"},
        {"kind": "docker-image", "imageName": "nginx:-latest"},
        {"kind": "docker-image", "imageName": "nginx:" + "x" * 129},
        {"kind": "docker-image", "imageName": "my image"},
        {"kind": "docker-image", "imageName": "nginx@sha256:abc"},
        {"kind": "docker-image", "imageName": "nginx", "imageTag": "bad tag"},
        {"kind": "docker-image", "imageName": "a//b"},
        {"kind": "git", "locator": "x"},
        {"kind": "local-folder", "locator": "./web", "baseDirectory": "/etc"},
        {"kind": "local-folder", "locator": "./web", "metadata": {"archiveId": "arc_foreign"}},
    ],
)
async def test_invalid_sources_are_refused(
    coordinator: Coordinator, admin_token: str, resource: dict[str, str], source: dict[str, Any]
) -> None:
    response = await coordinator.call(
        "POST", f"/resources/{resource['id']}/source", token=admin_token, json={"source": source}
    )
    assert_error(response, 400, "invalid_request")
    assert (await models.Resource.get(id=resource["id"])).source is None


async def test_local_folder_source(
    coordinator: Coordinator, admin_token: str, resource: dict[str, str]
) -> None:
    source = {
        "kind": "local-folder",
        "locator": "./web",
        "displayName": "Web",
        "baseDirectory": ".",
    }
    status, _, _ = await coordinator.call(
        "POST", f"/resources/{resource['id']}/source", token=admin_token, json={"source": source}
    )
    assert status == 200
    assert (await show(coordinator, admin_token, resource["id"]))["source"] == {
        **source,
        "metadata": {},
    }
    events = await audit_events(coordinator, admin_token, eventType="resource.source-configured")
    assert events[-1]["payload"]["source"]["locator"] == "./web"


async def test_variables_effective_config_and_precedence(
    coordinator: Coordinator, admin_token: str, resource: dict[str, str]
) -> None:
    rid, env = resource["id"], resource["environment"]
    for key, value in (("SHARED", "from-env"), ("ONLY_ENV", "e")):
        status, _, _ = await set_env_variable(coordinator, admin_token, env, key, value)
        assert status == 200
    for body in (
        {"key": "SHARED", "value": "from-resource", "exposure": "runtime"},
        {"key": "ONLY_RES", "value": "r", "exposure": "build-time"},
        {"key": "API_KEY", "value": SECRET, "exposure": "runtime", "isSecret": True},
    ):
        status, answer, _ = await coordinator.call(
            "POST", f"/resources/{rid}/variables", token=admin_token, json=body
        )
        assert (status, answer) == (200, None)
    status, config, _ = await coordinator.call(
        "GET", f"/resources/{rid}/effective-config", token=admin_token
    )
    assert status == 200, config
    assert config["schemaVersion"] == "resources.effective-config/v1"
    assert (config["resourceId"], config["environmentId"]) == (rid, env)
    assert config["precedence"] == ["environment", "resource"]
    effective = {
        (e["key"], e["exposure"]): (e["value"], e["scope"]) for e in config["effectiveEntries"]
    }
    assert effective == {
        ("API_KEY", "runtime"): ("****", "resource"),
        ("ONLY_ENV", "runtime"): ("e", "environment"),
        ("ONLY_RES", "build-time"): ("r", "resource"),
        ("SHARED", "runtime"): ("from-resource", "resource"),
    }
    assert [e["key"] for e in config["ownedEntries"]] == ["API_KEY", "ONLY_RES", "SHARED"]
    assert config["overrides"] == [
        {
            "key": "SHARED",
            "exposure": "runtime",
            "scope": "resource",
            "overriddenScope": "environment",
        }
    ]
    assert SECRET not in json.dumps(config)

    # The planner's view: the same precedence, with plaintext values.
    keyring = Keyring.load_or_create(coordinator.settings().data_dir)
    loaded = await load_resource_config(keyring, await models.Resource.get(id=rid))
    plain = {(e.key, e.exposure): (e.value, e.scope, e.is_secret) for e in loaded.entries}
    assert plain[("API_KEY", "runtime")] == (SECRET, "resource", True)
    assert plain[("SHARED", "runtime")] == ("from-resource", "resource", False)
    assert plain[("ONLY_ENV", "runtime")] == ("e", "environment", False)
    assert loaded.network_profile["internalPort"] == 80
    assert loaded.source is None

    status, answer, _ = await coordinator.call(
        "DELETE",
        f"/resources/{rid}/variables/SHARED",
        token=admin_token,
        json={"exposure": "runtime"},
    )
    assert (status, answer) == (200, None)
    status, config, _ = await coordinator.call(
        "GET", f"/resources/{rid}/effective-config", token=admin_token
    )
    shared = [e for e in config["effectiveEntries"] if e["key"] == "SHARED"]
    assert [(e["value"], e["scope"]) for e in shared] == [("from-env", "environment")]
    response = await coordinator.call(
        "POST",
        f"/resources/{rid}/variables",
        token=admin_token,
        json={"key": "1BAD", "value": "v", "exposure": "runtime"},
    )
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {"key"}
    types = [e["eventType"] for e in await audit_events(coordinator, admin_token, aggregateId=rid)]
    assert types.count("resource.variable-set") == 3
    assert types.count("resource.variable-deleted") == 1


async def test_secrets_lifecycle_never_shows_the_value(
    coordinator: Coordinator, admin_token: str, resource: dict[str, str]
) -> None:
    rid = resource["id"]
    seen: list[Any] = []

    async def call(method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, answer, _ = await coordinator.call(method, path, token=admin_token, json=body)
        assert got == status, answer
        seen.append(answer)
        return answer

    created = await call(
        "POST", f"/resources/{rid}/secrets", {"key": "DB_PASSWORD", "value": SECRET}, 201
    )
    assert created == {"resourceId": rid, "key": "DB_PASSWORD", "exposure": "runtime"}
    listed = await call("GET", f"/resources/{rid}/secrets")
    assert listed["schemaVersion"] == "resources.secrets.list/v1"
    assert listed["resourceId"] == rid
    [item] = listed["items"]
    assert item["value"] == "****"
    assert (item["key"], item["kind"], item["isSecret"], item["scope"]) == (
        "DB_PASSWORD",
        "secret",
        True,
        "resource",
    )
    assert (await call("GET", f"/resources/{rid}/secrets?exposure=build-time"))["items"] == []
    shown = await call("GET", f"/resources/{rid}/secrets/DB_PASSWORD")
    assert shown["schemaVersion"] == "resources.secrets.show/v1"
    assert shown["secret"]["value"] == "****"
    response = await coordinator.call(
        "POST",
        f"/resources/{rid}/secrets",
        token=admin_token,
        json={"key": "DB_PASSWORD", "value": "x"},
    )
    assert_error(response, 409, "conflict")
    await call("POST", f"/resources/{rid}/secrets/DB_PASSWORD", {"value": ROTATED})
    await call("GET", f"/resources/{rid}/effective-config")
    await call("GET", f"/resources/{rid}")

    keyring = Keyring.load_or_create(coordinator.settings().data_dir)
    loaded = await load_resource_config(keyring, await models.Resource.get(id=rid))
    assert [(e.key, e.value) for e in loaded.entries] == [("DB_PASSWORD", ROTATED)]
    [stored] = await models.Variable.filter(owner_id=rid, key="DB_PASSWORD").values(
        "value", "ciphertext"
    )
    assert stored["value"] is None
    assert str(stored["ciphertext"]).startswith("berth:v1:")

    events = await audit_events(coordinator, admin_token, aggregateId=rid)
    assert [e["eventType"] for e in events][-2:] == [
        "resource.secret-created",
        "resource.secret-rotated",
    ]
    text = json.dumps(seen) + json.dumps(events) + await database_dump()
    for plaintext in (SECRET, ROTATED):
        assert plaintext not in text

    deleted = await call("DELETE", f"/resources/{rid}/secrets/DB_PASSWORD")
    assert deleted == {"resourceId": rid, "key": "DB_PASSWORD", "exposure": "runtime"}
    assert (await call("GET", f"/resources/{rid}/secrets"))["items"] == []
    assert not await models.Variable.exists(owner_id=rid)


@pytest.mark.skipif(on_postgres(), reason="inspects the SQLite file; Postgres is checked by rows")
async def test_sqlite_file_never_holds_a_secret_plaintext(
    coordinator: Coordinator, admin_token: str, resource: dict[str, str]
) -> None:
    rid = resource["id"]
    status, _, _ = await coordinator.call(
        "POST", f"/resources/{rid}/secrets", token=admin_token, json={"key": "A", "value": SECRET}
    )
    assert status == 201
    status, _, _ = await coordinator.call(
        "POST",
        f"/resources/{rid}/variables",
        token=admin_token,
        json={"key": "B", "value": ROTATED, "exposure": "build-time", "isSecret": True},
    )
    assert status == 200
    url = coordinator.settings().effective_database_url
    database = Path(url.removeprefix("sqlite://"))
    files = sorted(database.parent.glob(database.name + "*"))
    assert database in files
    raw = b"".join(f.read_bytes() for f in files)
    assert b"resource.secret-created" in raw  # the file holds the rows written above
    for plaintext in (SECRET, ROTATED):
        assert plaintext.encode() not in raw


async def test_archive_blocks_changes(
    coordinator: Coordinator, admin_token: str, resource: dict[str, str]
) -> None:
    rid = resource["id"]
    status, body, _ = await coordinator.call(
        "POST", f"/resources/{rid}/archive", token=admin_token, json={"reason": "retired"}
    )
    assert (status, body) == (200, {"id": rid})
    shown = await show(coordinator, admin_token, rid)
    assert shown["lifecycle"]["status"] == "archived"
    assert shown["lifecycle"]["archivedAt"] is not None
    assert shown["resource"]["lifecycleStatus"] == "archived"
    for path, body in (
        ("archive", {}),
        ("network-profile", {"networkProfile": {"internalPort": 81}}),
        ("secrets", {"key": "K", "value": "v"}),
        ("variables", {"key": "K", "value": "v", "exposure": "runtime"}),
    ):
        response = await coordinator.call(
            "POST", f"/resources/{rid}/{path}", token=admin_token, json=body
        )
        assert "archived" in assert_error(response, 409, "conflict")["message"]
    events = await audit_events(coordinator, admin_token, eventType="resource.archived")
    assert [e["payload"]["reason"] for e in events] == ["retired"]


async def _deployment(resource: dict[str, str], status: str, created_at: datetime) -> str:
    deployment_id = new_id("dep")
    _ = await models.Deployment.create(
        id=deployment_id,
        organization_id="org_test",
        project_id=resource["project"],
        environment_id=resource["environment"],
        resource_id=resource["id"],
        server_id="srv_test",
        status=status,
        created_at=created_at,
    )
    return deployment_id


async def test_latest_deployment_and_delete_rules(
    coordinator: Coordinator, admin_token: str, resource: dict[str, str]
) -> None:
    rid = resource["id"]
    now = datetime.now(UTC)
    await _deployment(resource, "succeeded", now - timedelta(minutes=5))
    running = await _deployment(resource, "running", now)
    shown = await show(coordinator, admin_token, rid)
    assert shown["latestDeployment"]["id"] == running
    assert shown["latestDeployment"]["status"] == "running"
    assert shown["latestDeployment"]["serverId"] == "srv_test"
    assert shown["resource"]["deploymentCount"] == 2
    assert shown["resource"]["lastDeploymentStatus"] == "running"

    status, _, _ = await coordinator.call(
        "POST", f"/resources/{rid}/secrets", token=admin_token, json={"key": "K", "value": SECRET}
    )
    assert status == 201
    response = await coordinator.call(
        "DELETE",
        f"/resources/{rid}",
        token=admin_token,
        json={"confirmation": {"resourceSlug": rid}},
    )
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {
        "confirmation.resourceSlug"
    }
    confirm = {"confirmation": {"resourceSlug": "web-app"}}
    response = await coordinator.call(
        "DELETE", f"/resources/{rid}", token=admin_token, json=confirm
    )
    assert running in assert_error(response, 409, "conflict")["details"]["deploymentIds"]

    await models.Deployment.filter(id=running).update(status="failed")
    status, body, _ = await coordinator.call(
        "DELETE", f"/resources/{rid}", token=admin_token, json=confirm
    )
    assert (status, body) == (200, {"id": rid})
    assert_error(
        await coordinator.call("GET", f"/resources/{rid}", token=admin_token), 404, "not_found"
    )
    assert not await models.Variable.exists(owner_kind="resource", owner_id=rid)
    events = await audit_events(coordinator, admin_token, eventType="resource.deleted")
    assert [(e["aggregateId"], e["payload"]["variables"]) for e in events] == [(rid, 1)]
