"""Servers API: registration, validation, rename, show, delete, join tokens and enrollment."""

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator.app import MAX_BODY_BYTES
from coordinator.db import models
from shared.crypto import generate_private_key, key_fingerprint, public_key_text
from tests.harness import Coordinator
from tests.unit.coordinator.support import (
    assert_error,
    enroll,
    header,
    parse_time,
    problem_fields,
)


def _delete_body(server_id: str) -> dict[str, Any]:
    return {"confirmation": {"serverId": server_id}}


def _expires_in(body: dict[str, Any]) -> timedelta:
    return parse_time(body["joinTokenExpiresAt"]) - datetime.now(UTC)


async def test_create_returns_id_join_token_and_install_command(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, body, _ = await coordinator.call(
        "POST",
        "/servers",
        token=admin_token,
        json={"name": "web-1", "host": "10.0.0.5", "port": 22},
    )
    assert status == 201, body
    assert set(body) == {"id", "joinToken", "joinTokenExpiresAt", "installCommand"}
    assert body["id"].startswith("srv_")
    assert body["joinToken"].startswith("berth_jt_")
    assert timedelta(minutes=59) < _expires_in(body) <= timedelta(hours=1)
    command = body["installCommand"]
    assert coordinator.url in command
    assert f"--token {body['joinToken']}" in command
    assert f"{coordinator.url}/agent/v1/install.sh" in command

    row = await models.Server.get(id=body["id"])
    assert (row.name, row.host, row.port, row.provider_key) == (
        "web-1",
        "10.0.0.5",
        22,
        "berth-agent",
    )
    tokens = await models.JoinToken.filter(server_id=body["id"])
    assert len(tokens) == 1
    assert tokens[0].used_at is None


async def test_join_token_ttl_is_honoured_within_bounds(
    coordinator: Coordinator, admin_token: str
) -> None:
    short = await coordinator.add_server(admin_token, "short", joinTokenTtlSeconds=120)
    assert timedelta(seconds=100) < _expires_in(short) <= timedelta(seconds=120)
    week = await coordinator.add_server(admin_token, "week", joinTokenTtlSeconds=7 * 24 * 3600)
    assert timedelta(days=7) - timedelta(minutes=1) < _expires_in(week) <= timedelta(days=7)
    minimum = await coordinator.add_server(admin_token, "minimum", joinTokenTtlSeconds=60)
    assert timedelta(seconds=40) < _expires_in(minimum) <= timedelta(seconds=60)

    for ttl in (59, 0, -5, 7 * 24 * 3600 + 1, "soon"):
        response = await coordinator.call(
            "POST", "/servers", token=admin_token, json={"name": "bad", "joinTokenTtlSeconds": ttl}
        )
        error = assert_error(response, 400, "invalid_request")
        assert problem_fields(error) == {"joinTokenTtlSeconds"}, ttl
    assert not await models.Server.exists(name="bad")


async def test_duplicate_name_is_a_conflict(coordinator: Coordinator, admin_token: str) -> None:
    first = await coordinator.add_server(admin_token, "web-1")
    response = await coordinator.call("POST", "/servers", token=admin_token, json={"name": "web-1"})
    error = assert_error(response, 409, "conflict")
    assert "web-1" in error["message"]
    assert [s.id for s in await models.Server.all()] == [first["id"]]
    assert await models.JoinToken.all().count() == 1


async def test_invalid_names_are_rejected(coordinator: Coordinator, admin_token: str) -> None:
    for name in ("web 1", "", "-leading-dash", "x" * 101, "naïve", "a/b"):
        response = await coordinator.call(
            "POST", "/servers", token=admin_token, json={"name": name}
        )
        error = assert_error(response, 400, "invalid_request")
        assert problem_fields(error) == {"name"}, name
    assert await models.Server.all().count() == 0


async def test_unknown_and_invalid_fields_are_rejected(
    coordinator: Coordinator, admin_token: str
) -> None:
    response = await coordinator.call(
        "POST", "/servers", token=admin_token, json={"name": "web-1", "colour": "blue"}
    )
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {"colour"}
    response = await coordinator.call(
        "POST", "/servers", token=admin_token, json={"name": "web-1", "port": 70000}
    )
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {"port"}
    response = await coordinator.call("POST", "/servers", token=admin_token, json=["web-1"])
    assert_error(response, 400, "invalid_request")
    response = await coordinator.call("POST", "/servers", token=admin_token)
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {"name"}
    assert await models.Server.all().count() == 0


async def test_non_json_body_is_400(coordinator: Coordinator, admin_token: str) -> None:
    for raw in ('{"name": "web-1"', "name=web-1", "\x00\x01"):
        response = await coordinator.call(
            "POST",
            "/servers",
            token=admin_token,
            data=raw,
            headers={"Content-Type": "application/json"},
        )
        error = assert_error(response, 400, "invalid_request")
        assert "not valid JSON" in error["message"], raw
    assert await models.Server.all().count() == 0


async def test_body_over_one_mebibyte_is_413(coordinator: Coordinator, admin_token: str) -> None:
    assert coordinator.http is not None
    host = "h" * MAX_BODY_BYTES
    body = f'{{"name": "big", "host": "{host}"}}'.encode()
    assert len(body) > 1024 * 1024
    async with coordinator.http.post(
        coordinator.url + "/servers",
        data=io.BytesIO(body),
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
    ) as response:
        parsed = await response.json()
        headers = dict(response.headers)
        status = response.status
    assert_error((status, parsed, headers), 413, "payload_too_large")
    assert (header(headers, "Content-Type") or "").startswith("application/json")
    assert not await models.Server.exists(name="big")


async def test_rename_changes_the_name_and_refuses_duplicates(
    coordinator: Coordinator, admin_token: str
) -> None:
    a = await coordinator.add_server(admin_token, "a")
    await coordinator.add_server(admin_token, "b")
    status, body, _ = await coordinator.call(
        "POST", f"/servers/{a['id']}/rename", token=admin_token, json={"name": "a-renamed"}
    )
    assert status == 200, body
    assert body == {"id": a["id"]}
    status, shown, _ = await coordinator.call("GET", f"/servers/{a['id']}", token=admin_token)
    assert shown["server"]["name"] == "a-renamed"

    response = await coordinator.call(
        "POST", f"/servers/{a['id']}/rename", token=admin_token, json={"name": "b"}
    )
    assert_error(response, 409, "conflict")
    response = await coordinator.call(
        "POST", f"/servers/{a['id']}/rename", token=admin_token, json={"name": "has space"}
    )
    assert_error(response, 400, "invalid_request")
    assert (await models.Server.get(id=a["id"])).name == "a-renamed"
    response = await coordinator.call(
        "POST", "/servers/srv_missing/rename", token=admin_token, json={"name": "c"}
    )
    assert_error(response, 404, "not_found")


async def test_show_is_servers_show_v1(coordinator: Coordinator, admin_token: str) -> None:
    created = await coordinator.add_server(admin_token, "web-1", host="example.net", port=2222)
    status, body, _ = await coordinator.call("GET", f"/servers/{created['id']}", token=admin_token)
    assert status == 200, body
    assert body["schemaVersion"] == "servers.show/v1"
    server = body["server"]
    assert server["id"] == created["id"]
    assert (server["name"], server["host"], server["port"]) == ("web-1", "example.net", 2222)
    assert server["lifecycleStatus"] == "active"
    assert server["agent"]["status"] == "never-connected"
    assert server["agent"]["keyFingerprint"] is None
    assert server["credential"]["publicKeyConfigured"] is False
    assert server["credential"]["privateKeyConfigured"] is False
    assert body["rollups"] is not None
    assert body["rollups"]["deployments"]["total"] == 0
    assert created["joinToken"] not in str(body)

    status, bare, _ = await coordinator.call(
        "GET", f"/servers/{created['id']}?includeRollups=false", token=admin_token
    )
    assert status == 200, bare
    assert bare["rollups"] is None
    assert bare["server"] == server

    response = await coordinator.call("GET", "/servers/srv_missing", token=admin_token)
    assert_error(response, 404, "not_found")
    response = await coordinator.call(
        "GET", f"/servers/{created['id']}?includeRollups=perhaps", token=admin_token
    )
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {"includeRollups"}


async def test_show_reflects_enrolled_key(coordinator: Coordinator, admin_token: str) -> None:
    created = await coordinator.add_server(admin_token, "web-1")
    key = public_key_text(generate_private_key())
    status, enrolled, _ = await enroll(coordinator, created["joinToken"], key)
    assert status == 201, enrolled
    status, body, _ = await coordinator.call("GET", f"/servers/{created['id']}", token=admin_token)
    assert status == 200, body
    assert body["server"]["credential"]["publicKeyConfigured"] is True
    assert body["server"]["agent"]["keyFingerprint"] == key_fingerprint(key)
    assert body["server"]["agent"]["enrolledAt"] is not None
    assert body["server"]["agent"]["status"] == "never-connected"


async def test_count_counts_servers(coordinator: Coordinator, admin_token: str) -> None:
    status, body, _ = await coordinator.call("GET", "/servers/count", token=admin_token)
    assert (status, body) == (200, {"count": 0})
    for name in ("a", "b", "c"):
        await coordinator.add_server(admin_token, name)
    status, body, _ = await coordinator.call("GET", "/servers/count", token=admin_token)
    assert (status, body) == (200, {"count": 3})
    response = await coordinator.call("GET", "/servers/count?limit=1", token=admin_token)
    assert_error(response, 400, "invalid_request")


async def test_delete_requires_deactivation_and_matching_confirmation(
    coordinator: Coordinator, admin_token: str
) -> None:
    server = await coordinator.add_server(admin_token, "web-1")
    sid = server["id"]
    status, check, _ = await coordinator.call(
        "GET", f"/servers/{sid}/delete-check", token=admin_token
    )
    assert status == 200, check
    assert check["schemaVersion"] == "servers.delete-check/v1"
    assert check["eligible"] is False
    assert [b["kind"] for b in check["blockers"]] == ["active-server"]

    response = await coordinator.call(
        "DELETE", f"/servers/{sid}", token=admin_token, json=_delete_body(sid)
    )
    error = assert_error(response, 409, "conflict")
    assert [b["kind"] for b in error["details"]["blockers"]] == ["active-server"]
    assert await models.Server.exists(id=sid)

    status, body, _ = await coordinator.call(
        "POST", f"/servers/{sid}/deactivate", token=admin_token, json={"reason": "retired"}
    )
    assert (status, body) == (200, {"id": sid})
    status, shown, _ = await coordinator.call("GET", f"/servers/{sid}", token=admin_token)
    assert shown["server"]["lifecycleStatus"] == "inactive"
    assert shown["server"]["deactivationReason"] == "retired"
    status, check, _ = await coordinator.call(
        "GET", f"/servers/{sid}/delete-check", token=admin_token
    )
    assert (check["eligible"], check["blockers"], check["lifecycleStatus"]) == (
        True,
        [],
        "inactive",
    )

    other = await coordinator.add_server(admin_token, "web-2")
    response = await coordinator.call(
        "DELETE", f"/servers/{sid}", token=admin_token, json=_delete_body(other["id"])
    )
    assert_error(response, 400, "invalid_request")
    response = await coordinator.call("DELETE", f"/servers/{sid}", token=admin_token, json={})
    assert_error(response, 400, "invalid_request")
    assert await models.Server.exists(id=sid)

    status, body, _ = await coordinator.call(
        "DELETE", f"/servers/{sid}", token=admin_token, json=_delete_body(sid)
    )
    assert (status, body) == (200, {"id": sid})
    assert_error(
        await coordinator.call("GET", f"/servers/{sid}", token=admin_token), 404, "not_found"
    )
    response = await coordinator.call("GET", f"/servers/{sid}/delete-check", token=admin_token)
    assert_error(response, 404, "not_found")
    # Nothing of the server is left behind; the other server is untouched.
    assert not await models.JoinToken.exists(server_id=sid)
    assert [s.id for s in await models.Server.all()] == [other["id"]]


async def test_deactivate_is_idempotent_and_revokes_join_tokens(
    coordinator: Coordinator, admin_token: str
) -> None:
    server = await coordinator.add_server(admin_token, "web-1")
    for _ in range(2):
        status, body, _ = await coordinator.call(
            "POST", f"/servers/{server['id']}/deactivate", token=admin_token, json={}
        )
        assert (status, body) == (200, {"id": server["id"]})
    error = assert_error(await enroll(coordinator, server["joinToken"]), 401, "unauthorized")
    assert server["joinToken"] not in error["message"]
    response = await coordinator.call(
        "POST", f"/servers/{server['id']}/agent-enrollments", token=admin_token, json={}
    )
    assert_error(response, 409, "conflict")


async def test_agent_enrollment_mints_a_new_token_and_revokes_the_unused_one(
    coordinator: Coordinator, admin_token: str
) -> None:
    server = await coordinator.add_server(admin_token, "web-1")
    old = server["joinToken"]
    status, fresh, _ = await coordinator.call(
        "POST",
        f"/servers/{server['id']}/agent-enrollments",
        token=admin_token,
        json={"joinTokenTtlSeconds": 300},
    )
    assert status == 201, fresh
    new = fresh["joinToken"]
    assert fresh["id"] == server["id"]
    assert new.startswith("berth_jt_")
    assert new != old
    assert new in fresh["installCommand"]
    assert timedelta(minutes=4) < _expires_in(fresh) <= timedelta(minutes=5)

    assert_error(await enroll(coordinator, old), 401, "unauthorized")
    status, enrolled, _ = await enroll(coordinator, new)
    assert status == 201, enrolled
    assert enrolled["serverId"] == server["id"]
    assert enrolled["serverName"] == "web-1"
    assert enrolled["keyFingerprint"].startswith("SHA256:")
    assert enrolled["protocol"]
    # One use only.
    error = assert_error(await enroll(coordinator, new), 401, "unauthorized")
    assert "already used" in error["message"]


async def test_malformed_public_key_is_400_and_leaves_the_token_unused(
    coordinator: Coordinator, admin_token: str
) -> None:
    server = await coordinator.add_server(admin_token, "web-1")
    for bad in (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
        "ed25519:not*base64!!",
        "ed25519:" + "QUFB" * 4,
    ):
        response = await enroll(coordinator, server["joinToken"], bad)
        error = assert_error(response, 400, "invalid_request")
        assert "publicKey" in error["message"], bad
    response = await enroll(coordinator, server["joinToken"], "short")
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {"publicKey"}
    row = await models.JoinToken.get(server_id=server["id"])
    assert row.used_at is None
    assert (await models.Server.get(id=server["id"])).agent_public_key is None

    status, body, _ = await enroll(coordinator, server["joinToken"])
    assert status == 201, body


async def test_unknown_or_expired_join_token_is_401(
    coordinator: Coordinator, admin_token: str
) -> None:
    server = await coordinator.add_server(admin_token, "web-1")
    assert_error(await enroll(coordinator, "berth_jt_" + "x" * 43), 401, "unauthorized")
    await models.JoinToken.filter(server_id=server["id"]).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    error = assert_error(await enroll(coordinator, server["joinToken"]), 401, "unauthorized")
    assert "expired" in error["message"]


async def test_enrolling_against_a_deactivated_server_is_401(
    coordinator: Coordinator, admin_token: str
) -> None:
    server = await coordinator.add_server(admin_token, "web-1")
    # The join token itself is still valid; only the server's state refuses the enrollment.
    await models.Server.filter(id=server["id"]).update(lifecycle_status="inactive")
    error = assert_error(await enroll(coordinator, server["joinToken"]), 401, "unauthorized")
    assert "deactivated" in error["message"]
    row = await models.JoinToken.get(server_id=server["id"])
    assert row.used_at is None
    assert (await models.Server.get(id=server["id"])).agent_public_key is None


async def test_agent_key_rotation_forgets_the_key_and_issues_a_join_token(
    coordinator: Coordinator, admin_token: str
) -> None:
    server = await coordinator.add_server(admin_token, "web-1")
    status, _, _ = await enroll(coordinator, server["joinToken"])
    assert status == 201
    status, body, _ = await coordinator.call(
        "POST", f"/servers/{server['id']}/agent-key/rotate", token=admin_token, json={}
    )
    assert status == 200, body
    assert body["joinToken"].startswith("berth_jt_")
    row = await models.Server.get(id=server["id"])
    assert row.agent_public_key is None
    assert row.agent_key_fingerprint is None
    key = public_key_text(generate_private_key())
    status, enrolled, _ = await enroll(coordinator, body["joinToken"], key)
    assert status == 201, enrolled
    assert (await models.Server.get(id=server["id"])).agent_public_key == key


async def test_server_scoped_token_cannot_register_servers(
    coordinator: Coordinator, admin_token: str
) -> None:
    a = await coordinator.add_server(admin_token, "a")
    status, created, _ = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=admin_token,
        json={
            "displayName": "scoped",
            "scope": {"permissions": ["servers:write"], "deploymentTargetIds": [a["id"]]},
        },
    )
    assert status == 201, created
    response = await coordinator.call(
        "POST", "/servers", token=created["token"], json={"name": "sneaky"}
    )
    assert response[0] in (400, 403), response
    assert not await models.Server.exists(name="sneaky")
