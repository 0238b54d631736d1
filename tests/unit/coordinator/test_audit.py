"""Audit trail: one event per mutation with the right actor, no secrets, no partial writes."""

import json
from typing import Any

import pytest
from tortoise.models import Model

from coordinator import audit
from coordinator.db import models
from tests.harness import Coordinator
from tests.unit.coordinator.support import (
    Response,
    assert_error,
    audit_events,
    database_dump,
    enroll,
    header,
    mint_token,
)


class _Trail:
    """Reads the audit trail and checks that each mutation appended exactly one event."""

    def __init__(self, coordinator: Coordinator, token: str) -> None:
        self.coordinator = coordinator
        self.token = token
        self.seen: set[str] = set()

    async def new(self) -> list[dict[str, Any]]:
        events = await audit_events(self.coordinator, self.token)
        fresh = [e for e in events if e["id"] not in self.seen]
        self.seen |= {e["id"] for e in events}
        return fresh

    async def expect_one(
        self,
        response: Response,
        event_type: str,
        aggregate_id: str,
        actor_kind: str,
        actor_id: str,
    ) -> dict[str, Any]:
        status, body, headers = response
        assert status in (200, 201), body
        fresh = await self.new()
        assert len(fresh) == 1, fresh
        event = fresh[0]
        assert event["eventType"] == event_type
        assert event["aggregateId"] == aggregate_id
        assert event["actorKind"] == actor_kind
        assert event["actorId"] == actor_id
        assert event["requestId"] == header(headers, "X-Request-ID")
        return event

    async def expect_none(self) -> None:
        assert await self.new() == []


async def _bootstrap(coordinator: Coordinator) -> tuple[Response, dict[str, Any]]:
    response = await coordinator.call(
        "POST",
        "/bootstrap/auth/first-admin",
        json={"email": "admin@example.com", "displayName": "Admin"},
    )
    assert response[0] == 201, response
    return response, dict(response[1])


async def test_first_admin_is_audited(coordinator: Coordinator) -> None:
    response, admin = await _bootstrap(coordinator)
    trail = _Trail(coordinator, admin["apiToken"])
    event = await trail.expect_one(
        response, "bootstrap.first-admin-created", admin["userId"], "bootstrap", admin["userId"]
    )
    assert event["aggregateType"] == "user"
    assert event["payload"]["email"] == "admin@example.com"
    assert event["payload"]["apiTokenId"] == admin["apiTokenId"]


async def test_deploy_token_mutations_are_audited(coordinator: Coordinator) -> None:
    _, admin = await _bootstrap(coordinator)
    token, user = admin["apiToken"], admin["userId"]
    trail = _Trail(coordinator, token)
    await trail.new()

    response = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=token,
        json={"displayName": "ci", "scope": {"permissions": ["servers:read"]}},
    )
    token_id = response[1]["tokenId"]
    event = await trail.expect_one(response, "deploy-token.created", token_id, "deploy-token", user)
    assert event["payload"]["displayName"] == "ci"
    assert event["payload"]["scope"]["permissions"] == ["servers:read"]

    confirm = {"confirmation": {"tokenId": token_id}}
    response = await coordinator.call(
        "POST", f"/deploy-tokens/{token_id}/rotate", token=token, json=confirm
    )
    await trail.expect_one(response, "deploy-token.rotated", token_id, "deploy-token", user)

    response = await coordinator.call(
        "POST", f"/deploy-tokens/{token_id}/revoke", token=token, json=confirm
    )
    await trail.expect_one(response, "deploy-token.revoked", token_id, "deploy-token", user)

    # Revoking again changes nothing, so it records nothing.
    status, _, _ = await coordinator.call(
        "POST", f"/deploy-tokens/{token_id}/revoke", token=token, json=confirm
    )
    assert status == 200
    await trail.expect_none()


async def test_server_mutations_and_enrollment_are_audited(coordinator: Coordinator) -> None:
    _, admin = await _bootstrap(coordinator)
    token, user = admin["apiToken"], admin["userId"]
    trail = _Trail(coordinator, token)
    await trail.new()

    response = await coordinator.call(
        "POST", "/servers", token=token, json={"name": "web-1", "host": "10.0.0.1"}
    )
    sid = response[1]["id"]
    event = await trail.expect_one(response, "server.registered", sid, "deploy-token", user)
    assert event["payload"] == {"name": "web-1", "host": "10.0.0.1"}

    response = await coordinator.call(
        "POST", f"/servers/{sid}/rename", token=token, json={"name": "web-2"}
    )
    event = await trail.expect_one(response, "server.renamed", sid, "deploy-token", user)
    assert event["payload"] == {"from": "web-1", "to": "web-2"}

    response = await coordinator.call(
        "POST", f"/servers/{sid}/agent-enrollments", token=token, json={}
    )
    await trail.expect_one(response, "server.join-token-issued", sid, "deploy-token", user)
    join_token = response[1]["joinToken"]

    response = await enroll(coordinator, join_token)
    join_row = await models.JoinToken.get(server_id=sid, used_at__isnull=False)
    event = await trail.expect_one(
        response, "server.agent-enrolled", sid, "join-token", join_row.id
    )
    fingerprint = response[1]["keyFingerprint"]
    assert event["payload"]["keyFingerprint"] == fingerprint
    assert event["payload"]["previousKeyFingerprint"] is None

    response = await coordinator.call(
        "POST", f"/servers/{sid}/agent-key/rotate", token=token, json={}
    )
    event = await trail.expect_one(response, "server.agent-key-revoked", sid, "deploy-token", user)
    assert event["payload"]["previousKeyFingerprint"] == fingerprint

    response = await coordinator.call(
        "POST", f"/servers/{sid}/deactivate", token=token, json={"reason": "retired"}
    )
    event = await trail.expect_one(response, "server.deactivated", sid, "deploy-token", user)
    assert event["payload"] == {"reason": "retired"}

    response = await coordinator.call(
        "DELETE", f"/servers/{sid}", token=token, json={"confirmation": {"serverId": sid}}
    )
    event = await trail.expect_one(response, "server.deleted", sid, "deploy-token", user)
    assert event["payload"] == {"name": "web-2"}

    # The trail outlives the server it describes.
    events = await audit_events(coordinator, token, aggregateId=sid)
    assert [e["eventType"] for e in events] == [
        "server.registered",
        "server.renamed",
        "server.join-token-issued",
        "server.agent-enrolled",
        "server.agent-key-revoked",
        "server.deactivated",
        "server.deleted",
    ]


async def test_deploy_token_actor_is_the_token_itself(
    coordinator: Coordinator, admin_token: str
) -> None:
    writer = await mint_token(coordinator, admin_token, ["servers:write"])
    trail = _Trail(coordinator, admin_token)
    await trail.new()
    response = await coordinator.call("POST", "/servers", token=writer["token"], json={"name": "a"})
    await trail.expect_one(
        response, "server.registered", response[1]["id"], "deploy-token", writer["tokenId"]
    )


async def test_audit_events_can_be_filtered_by_type(
    coordinator: Coordinator, admin_token: str
) -> None:
    a = await coordinator.add_server(admin_token, "a")
    b = await coordinator.add_server(admin_token, "b")
    events = await audit_events(coordinator, admin_token, eventType="server.registered")
    assert [e["aggregateId"] for e in events] == [a["id"], b["id"]]
    events = await audit_events(coordinator, admin_token, aggregateId=b["id"])
    assert [e["eventType"] for e in events] == ["server.registered"]


async def test_audit_trail_never_contains_a_token_or_join_token(coordinator: Coordinator) -> None:
    _, admin = await _bootstrap(coordinator)
    token = admin["apiToken"]
    secrets = [token]
    created = await mint_token(coordinator, token, ["servers:read"])
    secrets.append(created["token"])
    confirm = {"confirmation": {"tokenId": created["tokenId"]}}
    status, rotated, _ = await coordinator.call(
        "POST", f"/deploy-tokens/{created['tokenId']}/rotate", token=token, json=confirm
    )
    assert status == 200, rotated
    secrets.append(rotated["token"])
    server = await coordinator.add_server(token, "web-1")
    secrets.append(server["joinToken"])
    status, again, _ = await coordinator.call(
        "POST", f"/servers/{server['id']}/agent-enrollments", token=token, json={}
    )
    assert status == 201, again
    secrets.append(again["joinToken"])
    status, _, _ = await enroll(coordinator, again["joinToken"])
    assert status == 201
    status, rekey, _ = await coordinator.call(
        "POST", f"/servers/{server['id']}/agent-key/rotate", token=token, json={}
    )
    assert status == 200, rekey
    secrets.append(rekey["joinToken"])

    events = await audit_events(coordinator, token)
    assert len(events) == 7
    text = json.dumps(events)
    rows = json.dumps([e.payload for e in await models.AuditEvent.all()])
    for secret in secrets:
        body = secret.split("_", 2)[2]
        for haystack in (text, rows):
            assert secret not in haystack
            assert body not in haystack


def test_redaction_masks_secret_keys_at_any_depth() -> None:
    clean, redacted = audit.redact(
        {"name": "a", "apiToken": "berth_at_x", "nested": {"join_token": "berth_jt_y", "n": 1}}
    )
    assert clean == {"name": "a", "apiToken": "****", "nested": {"join_token": "****", "n": 1}}
    assert redacted == ["apiToken", "nested.join_token"]


async def test_failed_mutations_add_no_audit_event_and_no_rows(
    coordinator: Coordinator, admin_token: str
) -> None:
    first = await coordinator.add_server(admin_token, "web-1")
    other = await coordinator.add_server(admin_token, "web-2")
    trail = _Trail(coordinator, admin_token)
    reader = await mint_token(coordinator, admin_token, ["servers:read"])
    minter = await mint_token(coordinator, admin_token, ["deploy-tokens:write"])
    await trail.new()
    dump_before = await database_dump(ignore={"last_used_at"})

    confirm_first = {"confirmation": {"serverId": first["id"]}}
    failures: list[tuple[str, str, str, dict[str, Any], int]] = [
        ("POST", "/servers", admin_token, {"name": "web-1"}, 409),
        ("POST", f"/servers/{other['id']}/rename", admin_token, {"name": "web-1"}, 409),
        ("POST", "/servers", admin_token, {"name": "a b"}, 400),
        ("POST", "/servers", reader["token"], {"name": "c"}, 403),
        ("DELETE", f"/servers/{first['id']}", admin_token, confirm_first, 409),
        ("POST", "/deploy-tokens", reader["token"], {"displayName": "x"}, 403),
        ("POST", "/deploy-tokens", minter["token"], {"scope": {"permissions": ["*"]}}, 400),
        (
            "POST",
            "/deploy-tokens",
            minter["token"],
            {"displayName": "x", "scope": {"permissions": ["*"]}},
            403,
        ),
    ]
    for method, path, token, body, expected in failures:
        status, answer, _ = await coordinator.call(method, path, token=token, json=body)
        assert status == expected, (method, path, answer)
    await trail.expect_none()
    assert [s.name for s in await models.Server.all().order_by("name")] == ["web-1", "web-2"]
    assert await models.JoinToken.all().count() == 2
    # Row for row, the database is as it was (only the callers' lastUsedAt may have moved).
    assert await database_dump(ignore={"last_used_at"}) == dump_before


@pytest.mark.parametrize("kind", ["server", "deploy-token", "first-admin"])
async def test_a_failure_inside_the_transaction_leaves_no_partial_write(
    coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    admin_token = await coordinator.bootstrap() if kind != "first-admin" else ""
    counts = {m: await m.all().count() for m in _MODELS}

    async def broken_record(**_kwargs: Any) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "record", broken_record)
    if kind == "server":
        response = await coordinator.call(
            "POST", "/servers", token=admin_token, json={"name": "web-1"}
        )
    elif kind == "deploy-token":
        response = await coordinator.call(
            "POST", "/deploy-tokens", token=admin_token, json={"displayName": "ci"}
        )
    else:
        response = await coordinator.call(
            "POST",
            "/bootstrap/auth/first-admin",
            json={"email": "admin@example.com", "displayName": "Admin"},
        )
    error = assert_error(response, 500, "internal")
    assert "audit store" not in error["message"]
    assert {m: await m.all().count() for m in _MODELS} == counts
    monkeypatch.undo()

    # With the audit store back, the same request succeeds (nothing half-written is in the way).
    if kind == "server":
        await coordinator.add_server(admin_token, "web-1")
    elif kind == "deploy-token":
        await mint_token(coordinator, admin_token, ["servers:read"])
    else:
        await coordinator.bootstrap()
    assert await models.AuditEvent.all().count() == counts[models.AuditEvent] + 1


_MODELS: list[type[Model]] = [
    models.Organization,
    models.User,
    models.ApiToken,
    models.Server,
    models.JoinToken,
    models.AuditEvent,
]
