"""Environments API: lifecycle, lock rules, variables (secrets never shown), clone, diff, scope."""

import json
from typing import Any

import pytest

from coordinator.db import models
from coordinator.secrets import Keyring, SecretError
from coordinator.variables import binding
from tests.harness import Coordinator
from tests.unit.coordinator.support import Response, assert_error, audit_events, problem_fields
from tests.unit.coordinator.test_projects_api import create_project, scoped_token

SECRET = "s3cr3t-Pa55w0rd-never-shown"
ITEM_KEYS = {
    "id",
    "projectId",
    "name",
    "kind",
    "parentEnvironmentId",
    "lifecycleStatus",
    "lockedAt",
    "lockReason",
    "archivedAt",
    "archiveReason",
    "createdAt",
    "maskedVariables",
}
ENTRY_KEYS = {"key", "value", "scope", "exposure", "isSecret", "kind", "updatedAt"}


async def create_environment(
    coordinator: Coordinator, token: str, project_id: str, name: str = "production", **extra: Any
) -> str:
    """Create an environment through the API; return its id."""
    status, body, _ = await coordinator.call(
        "POST", "/environments", token=token, json={"projectId": project_id, "name": name, **extra}
    )
    assert status == 201, body
    assert set(body) == {"id"}
    return str(body["id"])


async def set_variable(
    coordinator: Coordinator,
    token: str,
    environment_id: str,
    key: str,
    value: str,
    *,
    exposure: str = "runtime",
    **extra: Any,
) -> Response:
    """``POST /environments/{id}/variables``."""
    return await coordinator.call(
        "POST",
        f"/environments/{environment_id}/variables",
        token=token,
        json={"key": key, "value": value, "exposure": exposure, **extra},
    )


async def put_variable(
    coordinator: Coordinator, token: str, environment_id: str, key: str, value: str, **extra: Any
) -> None:
    """Set a variable and expect the reference's ``null`` answer."""
    status, body, _ = await set_variable(coordinator, token, environment_id, key, value, **extra)
    assert (status, body) == (200, None), body


async def stored(owner_id: str, key: str, exposure: str = "runtime") -> dict[str, Any]:
    """The raw stored columns of one variable row."""
    rows = await models.Variable.filter(owner_id=owner_id, key=key, exposure=exposure).values(
        "value", "ciphertext", "is_secret"
    )
    assert len(rows) == 1, rows
    return dict(rows[0])


async def _show(coordinator: Coordinator, token: str, environment_id: str) -> dict[str, Any]:
    status, body, _ = await coordinator.call("GET", f"/environments/{environment_id}", token=token)
    assert status == 200, body
    return dict(body)


def _keyring(coordinator: Coordinator) -> Keyring:
    return Keyring.load_or_create(coordinator.settings().data_dir)


@pytest.fixture
async def project_id(coordinator: Coordinator, admin_token: str) -> str:
    """An active project."""
    return await create_project(coordinator, admin_token, "shop")


@pytest.fixture
async def environment_id(coordinator: Coordinator, admin_token: str, project_id: str) -> str:
    """An active environment in ``project_id``."""
    return await create_environment(coordinator, admin_token, project_id)


async def test_create_and_show(coordinator: Coordinator, admin_token: str, project_id: str) -> None:
    env_id = await create_environment(coordinator, admin_token, project_id)
    assert env_id.startswith("env_")
    item = await _show(coordinator, admin_token, env_id)
    assert set(item) == ITEM_KEYS
    assert item["projectId"] == project_id
    assert (item["name"], item["kind"], item["lifecycleStatus"]) == (
        "production",
        "production",
        "active",
    )
    assert item["parentEnvironmentId"] is None
    assert item["maskedVariables"] == []
    staging = await create_environment(
        coordinator, admin_token, project_id, "staging", kind="staging"
    )
    assert (await _show(coordinator, admin_token, staging))["kind"] == "staging"
    events = await audit_events(coordinator, admin_token, aggregateId=env_id)
    assert [(e["eventType"], e["payload"]) for e in events] == [
        ("environment.created", {"projectId": project_id, "name": "production"})
    ]


async def test_create_errors(
    coordinator: Coordinator, admin_token: str, project_id: str, environment_id: str
) -> None:
    response = await coordinator.call(
        "POST",
        "/environments",
        token=admin_token,
        json={"projectId": project_id, "name": "production"},
    )
    assert_error(response, 409, "conflict")
    for body, field in (
        ({"projectId": project_id, "name": "qa", "kind": "testing"}, "kind"),
        ({"projectId": project_id, "name": "bad name"}, "name"),
        ({"projectId": project_id, "name": ""}, "name"),
        ({"name": "qa"}, "projectId"),
    ):
        response = await coordinator.call("POST", "/environments", token=admin_token, json=body)
        error = assert_error(response, 400, "invalid_request")
        assert problem_fields(error) == {field}, body
    response = await coordinator.call(
        "POST", "/environments", token=admin_token, json={"projectId": "prj_missing", "name": "qa"}
    )
    assert_error(response, 404, "not_found")
    assert await models.Environment.all().count() == 1


async def test_list_and_count(coordinator: Coordinator, admin_token: str, project_id: str) -> None:
    other = await create_project(coordinator, admin_token, "other")
    ids = [
        await create_environment(coordinator, admin_token, project_id, f"e{i}") for i in range(3)
    ]
    elsewhere = await create_environment(coordinator, admin_token, other, "production")
    await put_variable(coordinator, admin_token, ids[0], "A", "1")

    status, page, _ = await coordinator.call(
        "GET", f"/environments?projectId={project_id}&limit=2", token=admin_token
    )
    assert status == 200, page
    assert [e["id"] for e in page["items"]] == ids[:2]
    assert all(set(e) == ITEM_KEYS for e in page["items"])
    assert [v["key"] for v in page["items"][0]["maskedVariables"]] == ["A"]
    status, rest, _ = await coordinator.call(
        "GET",
        f"/environments?projectId={project_id}&limit=2&cursor={page['nextCursor']}",
        token=admin_token,
    )
    assert status == 200, rest
    assert ([e["id"] for e in rest["items"]], rest["nextCursor"]) == (ids[2:], None)
    status, everything, _ = await coordinator.call("GET", "/environments", token=admin_token)
    assert status == 200, everything
    assert [e["id"] for e in everything["items"]] == [*ids, elsewhere]

    for query, expected in ((f"?projectId={project_id}", 3), (f"?projectId={other}", 1), ("", 4)):
        status, body, _ = await coordinator.call(
            "GET", f"/environments/count{query}", token=admin_token
        )
        assert (status, body) == (200, {"count": expected})
    for query in ("limit=0", "limit=501", "lifecycleStatus=gone"):
        response = await coordinator.call("GET", f"/environments?{query}", token=admin_token)
        assert_error(response, 400, "invalid_request")


async def test_rename(
    coordinator: Coordinator, admin_token: str, project_id: str, environment_id: str
) -> None:
    await create_environment(coordinator, admin_token, project_id, "staging")
    path = f"/environments/{environment_id}/rename"
    status, body, _ = await coordinator.call("POST", path, token=admin_token, json={"name": "prod"})
    assert (status, body) == (200, {"id": environment_id})
    assert (await _show(coordinator, admin_token, environment_id))["name"] == "prod"
    response = await coordinator.call("POST", path, token=admin_token, json={"name": "staging"})
    assert_error(response, 409, "conflict")


def _mutations(environment_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    base = f"/environments/{environment_id}"
    return [
        ("POST", f"{base}/rename", {"name": "renamed"}),
        ("POST", f"{base}/lock", {}),
        ("POST", f"{base}/archive", {}),
        ("POST", f"{base}/clone", {"targetName": "copy"}),
        ("POST", f"{base}/variables", {"key": "B", "value": "2", "exposure": "runtime"}),
        ("DELETE", f"{base}/variables/A", {"exposure": "runtime"}),
    ]


async def test_locked_environment_refuses_every_change_until_unlocked(
    coordinator: Coordinator, admin_token: str, environment_id: str
) -> None:
    await put_variable(coordinator, admin_token, environment_id, "A", "1")
    status, body, _ = await coordinator.call(
        "POST", f"/environments/{environment_id}/lock", token=admin_token, json={"reason": "freeze"}
    )
    assert (status, body) == (200, {"id": environment_id})
    item = await _show(coordinator, admin_token, environment_id)
    assert (item["lifecycleStatus"], item["lockReason"]) == ("locked", "freeze")
    assert item["lockedAt"] is not None
    before = len(await audit_events(coordinator, admin_token))

    for method, path, json_body in _mutations(environment_id):
        response = await coordinator.call(method, path, token=admin_token, json=json_body)
        error = assert_error(response, 409, "conflict")
        assert error["message"] == "environment is locked: freeze", path
    assert len(await audit_events(coordinator, admin_token)) == before
    assert await models.Environment.all().count() == 1
    assert [
        v["key"] for v in (await _show(coordinator, admin_token, environment_id))["maskedVariables"]
    ] == ["A"]

    unlock = f"/environments/{environment_id}/unlock"
    status, body, _ = await coordinator.call("POST", unlock, token=admin_token)
    assert (status, body) == (200, {"id": environment_id})
    item = await _show(coordinator, admin_token, environment_id)
    assert (item["lifecycleStatus"], item["lockedAt"], item["lockReason"]) == ("active", None, None)
    assert_error(await coordinator.call("POST", unlock, token=admin_token), 409, "conflict")
    await put_variable(coordinator, admin_token, environment_id, "B", "2")


async def test_archived_environment_refuses_everything_but_reads(
    coordinator: Coordinator, admin_token: str, environment_id: str
) -> None:
    await put_variable(coordinator, admin_token, environment_id, "A", "1")
    status, _, _ = await coordinator.call(
        "POST", f"/environments/{environment_id}/archive", token=admin_token, json={"reason": "old"}
    )
    assert status == 200
    item = await _show(coordinator, admin_token, environment_id)
    assert (item["lifecycleStatus"], item["archiveReason"]) == ("archived", "old")
    mutations = [
        *_mutations(environment_id),
        ("POST", f"/environments/{environment_id}/unlock", None),
    ]
    for method, path, json_body in mutations:
        response = await coordinator.call(method, path, token=admin_token, json=json_body)
        assert_error(response, 409, "conflict")
    for suffix in ("", "/effective-precedence", f"/diff/{environment_id}"):
        status, _, _ = await coordinator.call(
            "GET", f"/environments/{environment_id}{suffix}", token=admin_token
        )
        assert status == 200, suffix


async def test_variables_are_upserted_masked_and_deleted(
    coordinator: Coordinator, admin_token: str, project_id: str, environment_id: str
) -> None:
    status, body, _ = await set_variable(
        coordinator, admin_token, environment_id, "LOG_LEVEL", "info", exposure="build-time"
    )
    assert (status, body) == (200, None)
    await put_variable(coordinator, admin_token, environment_id, "LOG_LEVEL", "debug")
    await put_variable(
        coordinator, admin_token, environment_id, "DB_PASSWORD", SECRET, kind="secret"
    )
    await put_variable(coordinator, admin_token, environment_id, "API_KEY", SECRET, isSecret=True)
    # Upsert: same key + exposure replaces.
    await put_variable(coordinator, admin_token, environment_id, "LOG_LEVEL", "warn")

    entries = (await _show(coordinator, admin_token, environment_id))["maskedVariables"]
    assert all(set(e) == ENTRY_KEYS and e["scope"] == "environment" for e in entries)
    assert [(e["key"], e["exposure"], e["value"], e["isSecret"], e["kind"]) for e in entries] == [
        ("API_KEY", "runtime", "****", True, "plain-config"),
        ("DB_PASSWORD", "runtime", "****", True, "secret"),
        ("LOG_LEVEL", "build-time", "info", False, "plain-config"),
        ("LOG_LEVEL", "runtime", "warn", False, "plain-config"),
    ]

    status, precedence, _ = await coordinator.call(
        "GET", f"/environments/{environment_id}/effective-precedence", token=admin_token
    )
    assert status == 200, precedence
    assert set(precedence) == {
        "schemaVersion",
        "environmentId",
        "projectId",
        "ownedEntries",
        "effectiveEntries",
        "precedence",
        "generatedAt",
    }
    assert precedence["schemaVersion"] == "environments.effective-precedence/v1"
    assert (precedence["environmentId"], precedence["projectId"]) == (environment_id, project_id)
    assert precedence["ownedEntries"] == entries
    assert precedence["effectiveEntries"] == entries
    assert precedence["precedence"] == ["environment"]

    path = f"/environments/{environment_id}/variables/LOG_LEVEL"
    status, body, _ = await coordinator.call(
        "DELETE", path, token=admin_token, json={"exposure": "build-time"}
    )
    assert (status, body) == (200, None)
    response = await coordinator.call(
        "DELETE", path, token=admin_token, json={"exposure": "build-time"}
    )
    assert_error(response, 404, "not_found")
    remaining = (await _show(coordinator, admin_token, environment_id))["maskedVariables"]
    assert [(e["key"], e["exposure"]) for e in remaining] == [
        ("API_KEY", "runtime"),
        ("DB_PASSWORD", "runtime"),
        ("LOG_LEVEL", "runtime"),
    ]
    events = await audit_events(coordinator, admin_token, aggregateId=environment_id)
    kinds = [e["eventType"] for e in events]
    assert kinds.count("environment.variable-set") == 5
    assert kinds[-1] == "environment.variable-deleted"
    secret_events = [e for e in events if e["payload"].get("key") == "DB_PASSWORD"]
    assert secret_events[0]["payload"] == {
        "key": "DB_PASSWORD",
        "exposure": "runtime",
        "kind": "secret",
        "isSecret": True,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "1ABC", "value": "x", "exposure": "runtime"}, "key"),
        ({"key": "A-B", "value": "x", "exposure": "runtime"}, "key"),
        ({"key": "A" * 256, "value": "x", "exposure": "runtime"}, "key"),
        ({"key": "A", "value": "x" * (64 * 1024 + 1), "exposure": "runtime"}, "value"),
        ({"key": "A", "value": "x", "exposure": "always"}, "exposure"),
        ({"key": "A", "value": "x"}, "exposure"),
        ({"key": "A", "value": "x", "exposure": "runtime", "kind": "file"}, "kind"),
        ({"key": "A", "value": "x", "exposure": "runtime", "scope": "project"}, "scope"),
    ],
)
async def test_invalid_variables_are_400(
    coordinator: Coordinator,
    admin_token: str,
    environment_id: str,
    body: dict[str, Any],
    field: str,
) -> None:
    response = await coordinator.call(
        "POST", f"/environments/{environment_id}/variables", token=admin_token, json=body
    )
    error = assert_error(response, 400, "invalid_request")
    assert problem_fields(error) == {field}
    assert not await models.Variable.exists()


async def test_delete_with_invalid_key_is_400(
    coordinator: Coordinator, admin_token: str, environment_id: str
) -> None:
    response = await coordinator.call(
        "DELETE",
        f"/environments/{environment_id}/variables/not-valid",
        token=admin_token,
        json={"exposure": "runtime"},
    )
    assert_error(response, 400, "invalid_request")


async def test_largest_value_is_accepted(
    coordinator: Coordinator, admin_token: str, environment_id: str
) -> None:
    value = "x" * (64 * 1024)
    await put_variable(coordinator, admin_token, environment_id, "BIG", value)
    assert (await stored(environment_id, "BIG"))["value"] == value


async def test_secrets_are_encrypted_at_rest_and_never_shown(
    coordinator: Coordinator, admin_token: str, project_id: str, environment_id: str
) -> None:
    other = await create_environment(coordinator, admin_token, project_id, "staging")
    for env in (environment_id, other):
        await put_variable(coordinator, admin_token, env, "DB_PASSWORD", SECRET, kind="secret")
    await put_variable(coordinator, admin_token, other, "EXTRA", SECRET, isSecret=True)

    for owner, key in ((environment_id, "DB_PASSWORD"), (other, "DB_PASSWORD"), (other, "EXTRA")):
        row = await stored(owner, key)
        assert row["is_secret"]
        assert row["value"] is None
        assert isinstance(row["ciphertext"], str)
        assert SECRET not in row["ciphertext"]
    ciphertext = (await stored(environment_id, "DB_PASSWORD"))["ciphertext"]
    keyring = _keyring(coordinator)
    bound = binding("environment", environment_id, "DB_PASSWORD", "runtime")
    assert keyring.decrypt(ciphertext, bound) == SECRET
    with pytest.raises(SecretError):
        keyring.decrypt(ciphertext, binding("environment", other, "DB_PASSWORD", "runtime"))

    bodies = []
    for path in (
        f"/environments/{environment_id}",
        "/environments",
        f"/environments/{environment_id}/effective-precedence",
        f"/environments/{environment_id}/diff/{other}",
        f"/environments/{other}/diff/{environment_id}",
        "/audit-events?limit=500",
    ):
        status, body, _ = await coordinator.call("GET", path, token=admin_token)
        assert status == 200, path
        bodies.append(json.dumps(body))
    assert all(SECRET not in b for b in bodies)
    assert "DB_PASSWORD" in bodies[0]
    assert all(SECRET not in (r.value or "") for r in await models.Variable.all())
    events = await models.AuditEvent.all()
    assert all(SECRET not in json.dumps(e.payload) for e in events)


async def test_clone_copies_variables_and_re_encrypts_secrets(
    coordinator: Coordinator, admin_token: str, project_id: str, environment_id: str
) -> None:
    await put_variable(coordinator, admin_token, environment_id, "LOG_LEVEL", "info")
    await put_variable(coordinator, admin_token, environment_id, "TOKEN", SECRET, kind="secret")
    await coordinator.call(
        "POST", f"/environments/{environment_id}/rename", token=admin_token, json={"name": "prod"}
    )
    status, body, _ = await coordinator.call(
        "POST",
        f"/environments/{environment_id}/clone",
        token=admin_token,
        json={"targetName": "prod-copy"},
    )
    assert status == 201, body
    clone_id = body["id"]
    assert clone_id != environment_id
    item = await _show(coordinator, admin_token, clone_id)
    assert (item["name"], item["kind"], item["parentEnvironmentId"], item["projectId"]) == (
        "prod-copy",
        "production",
        environment_id,
        project_id,
    )
    assert [(v["key"], v["value"]) for v in item["maskedVariables"]] == [
        ("LOG_LEVEL", "info"),
        ("TOKEN", "****"),
    ]
    source = await stored(environment_id, "TOKEN")
    copy = await stored(clone_id, "TOKEN")
    assert copy["value"] is None
    assert isinstance(copy["ciphertext"], str)
    assert copy["ciphertext"] != source["ciphertext"]
    keyring = _keyring(coordinator)
    new_binding = binding("environment", clone_id, "TOKEN", "runtime")
    assert keyring.decrypt(copy["ciphertext"], new_binding) == SECRET
    old_binding = binding("environment", environment_id, "TOKEN", "runtime")
    with pytest.raises(SecretError):
        keyring.decrypt(copy["ciphertext"], old_binding)

    status, diff, _ = await coordinator.call(
        "GET", f"/environments/{environment_id}/diff/{clone_id}", token=admin_token
    )
    assert (status, diff) == (200, [])
    response = await coordinator.call(
        "POST",
        f"/environments/{environment_id}/clone",
        token=admin_token,
        json={"targetName": "prod-copy"},
    )
    assert_error(response, 409, "conflict")
    events = await audit_events(coordinator, admin_token, eventType="environment.cloned")
    assert [e["payload"] for e in events] == [
        {"sourceEnvironmentId": environment_id, "name": "prod-copy", "variables": 2}
    ]


async def test_diff_reports_added_removed_and_changed(
    coordinator: Coordinator, admin_token: str, project_id: str, environment_id: str
) -> None:
    right = await create_environment(coordinator, admin_token, project_id, "staging")
    settings = {
        environment_id: [
            ("SAME", "1", {}),
            ("ONLY_LEFT", "x", {}),
            ("PLAIN", "a", {}),
            ("SECRET_SAME", SECRET, {"kind": "secret"}),
            ("SECRET_CHANGED", SECRET, {"kind": "secret"}),
        ],
        right: [
            ("SAME", "1", {}),
            ("ONLY_RIGHT", "y", {}),
            ("PLAIN", "b", {}),
            ("SECRET_SAME", SECRET, {"kind": "secret"}),
            ("SECRET_CHANGED", SECRET + "2", {"kind": "secret"}),
        ],
    }
    for env, entries in settings.items():
        for key, value, extra in entries:
            await put_variable(coordinator, admin_token, env, key, value, **extra)
    await put_variable(coordinator, admin_token, right, "SAME", "1", exposure="build-time")

    status, diff, _ = await coordinator.call(
        "GET", f"/environments/{environment_id}/diff/{right}", token=admin_token
    )
    assert status == 200, diff
    assert isinstance(diff, list)
    assert [(d["key"], d["exposure"], d["change"]) for d in diff] == [
        ("ONLY_LEFT", "runtime", "removed"),
        ("ONLY_RIGHT", "runtime", "added"),
        ("PLAIN", "runtime", "changed"),
        ("SAME", "build-time", "added"),
        ("SECRET_CHANGED", "runtime", "changed"),
    ]
    by_key = {(d["key"], d["exposure"]): d for d in diff}
    assert by_key["ONLY_LEFT", "runtime"]["right"] is None
    assert by_key["ONLY_RIGHT", "runtime"]["left"] is None
    plain = by_key["PLAIN", "runtime"]
    assert (plain["left"]["value"], plain["right"]["value"]) == ("a", "b")
    assert set(plain["left"]) == ENTRY_KEYS
    secret = by_key["SECRET_CHANGED", "runtime"]
    assert (secret["left"]["value"], secret["right"]["value"]) == ("****", "****")
    assert SECRET not in json.dumps(diff)

    status, reverse, _ = await coordinator.call(
        "GET", f"/environments/{right}/diff/{environment_id}", token=admin_token
    )
    assert status == 200, reverse
    assert [d["change"] for d in reverse] == ["added", "removed", "changed", "removed", "changed"]
    response = await coordinator.call(
        "GET", f"/environments/{environment_id}/diff/env_missing", token=admin_token
    )
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "suffix", "json_body"),
    [
        ("GET", "", None),
        ("GET", "/effective-precedence", None),
        ("POST", "/rename", {"name": "x"}),
        ("POST", "/lock", {}),
        ("POST", "/unlock", None),
        ("POST", "/archive", {}),
        ("POST", "/clone", {"targetName": "x"}),
        ("POST", "/variables", {"key": "A", "value": "1", "exposure": "runtime"}),
        ("DELETE", "/variables/A", {"exposure": "runtime"}),
    ],
)
async def test_unknown_environment_is_404(
    coordinator: Coordinator, admin_token: str, method: str, suffix: str, json_body: Any
) -> None:
    response = await coordinator.call(
        method, f"/environments/env_missing{suffix}", token=admin_token, json=json_body
    )
    assert_error(response, 404, "not_found")


async def test_scoped_tokens_see_only_their_environments(
    coordinator: Coordinator, admin_token: str, project_id: str, environment_id: str
) -> None:
    staging = await create_environment(coordinator, admin_token, project_id, "staging")
    other_project = await create_project(coordinator, admin_token, "other")
    foreign = await create_environment(coordinator, admin_token, other_project)
    rw = ["projects:read", "projects:write"]

    by_env = await scoped_token(coordinator, admin_token, rw, environmentIds=[environment_id])
    status, body, _ = await coordinator.call("GET", "/environments", token=by_env)
    assert status == 200, body
    assert [e["id"] for e in body["items"]] == [environment_id]
    status, body, _ = await coordinator.call("GET", "/environments/count", token=by_env)
    assert (status, body) == (200, {"count": 1})
    await put_variable(coordinator, by_env, environment_id, "A", "1")
    for target in (staging, foreign):
        assert_error(await set_variable(coordinator, by_env, target, "A", "1"), 404, "not_found")
        response = await coordinator.call("GET", f"/environments/{target}", token=by_env)
        assert_error(response, 404, "not_found")
    response = await coordinator.call(
        "GET", f"/environments/{environment_id}/diff/{staging}", token=by_env
    )
    assert_error(response, 404, "not_found")
    response = await coordinator.call(
        "POST", "/environments", token=by_env, json={"projectId": project_id, "name": "qa"}
    )
    assert_error(response, 403, "forbidden")

    by_project = await scoped_token(coordinator, admin_token, rw, projectIds=[project_id])
    status, body, _ = await coordinator.call("GET", "/environments", token=by_project)
    assert status == 200, body
    assert [e["id"] for e in body["items"]] == [environment_id, staging]
    response = await coordinator.call("GET", f"/environments/{foreign}", token=by_project)
    assert_error(response, 404, "not_found")
    response = await coordinator.call(
        "POST", "/environments", token=by_project, json={"projectId": other_project, "name": "qa"}
    )
    assert_error(response, 404, "not_found")
    await create_environment(coordinator, by_project, project_id, "qa")


async def test_permissions_are_enforced(
    coordinator: Coordinator, admin_token: str, environment_id: str
) -> None:
    reader = await scoped_token(coordinator, admin_token, ["projects:read"])
    await _show(coordinator, reader, environment_id)
    error = assert_error(
        await set_variable(coordinator, reader, environment_id, "A", "1"), 403, "forbidden"
    )
    assert error["details"] == {"requiredPermission": "projects:write"}
    outsider = await scoped_token(coordinator, admin_token, ["servers:read"])
    response = await coordinator.call("GET", f"/environments/{environment_id}", token=outsider)
    assert_error(response, 403, "forbidden")
    assert not await models.Variable.exists()
