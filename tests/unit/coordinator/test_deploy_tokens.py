"""Deploy tokens: shown once, stored hashed, rotation, revocation, scopes and pagination."""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from coordinator.db import models
from tests.harness import Coordinator
from tests.unit.coordinator.support import (
    assert_error,
    database_dump,
    mint_token,
    on_postgres,
    parse_time,
    problem_fields,
)


def _confirm(token_id: str) -> dict[str, Any]:
    return {"confirmation": {"tokenId": token_id}}


async def _works(coordinator: Coordinator, token: str) -> bool:
    status, _, _ = await coordinator.call("GET", "/servers", token=token)
    assert status in (200, 401)
    return status == 200


async def test_create_shows_the_plaintext_once_with_prefix_suffix_and_scope(
    coordinator: Coordinator, admin_token: str
) -> None:
    scope = {"permissions": ["servers:read", "audit-events:read"], "projectIds": ["prj_1"]}
    status, body, _ = await coordinator.call(
        "POST", "/deploy-tokens", token=admin_token, json={"displayName": "ci", "scope": scope}
    )
    assert status == 201, body
    token = body["token"]
    assert token.startswith("berth_at_")
    assert body["tokenId"].startswith("tok_")
    assert body["secretSuffix"] == token[-4:]
    assert len(body["secretSuffix"]) == 4
    assert body["displayName"] == "ci"
    assert body["scope"] == body["scopes"]
    assert body["scope"]["permissions"] == ["servers:read", "audit-events:read"]
    assert body["scope"]["projectIds"] == ["prj_1"]
    assert body["scope"]["deploymentTargetIds"] == []
    assert body["expiresAt"] is None
    assert await _works(coordinator, token)


async def test_default_scope_is_read_only_servers(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, body, _ = await coordinator.call(
        "POST", "/deploy-tokens", token=admin_token, json={"displayName": "default"}
    )
    assert status == 201, body
    assert body["scope"]["permissions"] == ["servers:read"]
    assert await _works(coordinator, body["token"])
    response = await coordinator.call("POST", "/servers", token=body["token"], json={"name": "a"})
    assert_error(response, 403, "forbidden")


async def test_create_rejects_unknown_permission_and_fields(
    coordinator: Coordinator, admin_token: str
) -> None:
    response = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=admin_token,
        json={"displayName": "x", "scope": {"permissions": ["servers:nuke"]}},
    )
    error = assert_error(response, 400, "invalid_request")
    assert problem_fields(error) == {"scope.permissions.0"}
    response = await coordinator.call(
        "POST", "/deploy-tokens", token=admin_token, json={"displayName": "x", "secret": "s"}
    )
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {"secret"}
    assert await models.ApiToken.all().count() == 1


async def test_list_and_show_never_contain_the_plaintext(
    coordinator: Coordinator, admin_token: str
) -> None:
    created = await mint_token(coordinator, admin_token, ["servers:read"])
    secrets = [created["token"], admin_token]

    status, listed, _ = await coordinator.call("GET", "/deploy-tokens", token=admin_token)
    assert status == 200, listed
    status, shown, _ = await coordinator.call(
        "GET", f"/deploy-tokens/{created['tokenId']}", token=admin_token
    )
    assert status == 200, shown
    assert shown["secretSuffix"] == created["token"][-4:]
    assert shown["status"] == "active"
    assert "token" not in shown
    assert {item["tokenId"] for item in listed["items"]} >= {created["tokenId"]}
    for document in (listed, shown):
        text = json.dumps(document)
        for secret in secrets:
            assert secret not in text
            # Not even most of it: only the four-character suffix is ever shown again.
            assert secret[: len(secret) - 4] not in text


async def test_database_stores_only_the_sha256_of_tokens(
    coordinator: Coordinator, admin_token: str
) -> None:
    created = await mint_token(coordinator, admin_token, ["servers:read"])
    plaintexts = [admin_token, created["token"]]
    rows = {r.id: r for r in await models.ApiToken.all()}
    assert (
        rows[created["tokenId"]].token_hash == hashlib.sha256(created["token"].encode()).hexdigest()
    )

    dump = await database_dump()
    for plaintext in plaintexts:
        assert hashlib.sha256(plaintext.encode()).hexdigest() in dump  # the dump sees the rows
        assert plaintext not in dump
        assert plaintext.removeprefix("berth_at_") not in dump


@pytest.mark.skipif(on_postgres(), reason="inspects the SQLite file; Postgres is checked by rows")
async def test_sqlite_file_never_holds_a_token_plaintext(
    coordinator: Coordinator, admin_token: str
) -> None:
    created = await mint_token(coordinator, admin_token, ["servers:read"])
    server = await coordinator.add_server(admin_token, "web-1")
    url = coordinator.settings().effective_database_url
    assert url.startswith("sqlite://")
    database = Path(url.removeprefix("sqlite://"))
    files = sorted(database.parent.glob(database.name + "*"))
    assert database in files
    raw = b"".join(f.read_bytes() for f in files)
    for plaintext in (admin_token, created["token"], server["joinToken"]):
        assert hashlib.sha256(plaintext.encode()).hexdigest().encode() in raw
        assert plaintext.encode() not in raw
        assert plaintext.split("_", 2)[2].encode() not in raw


async def test_rotate_replaces_the_secret_at_once(
    coordinator: Coordinator, admin_token: str
) -> None:
    created = await mint_token(coordinator, admin_token, ["servers:read", "audit-events:read"])
    old = created["token"]
    status, rotated, _ = await coordinator.call(
        "POST",
        f"/deploy-tokens/{created['tokenId']}/rotate",
        token=admin_token,
        json=_confirm(created["tokenId"]),
    )
    assert status == 200, rotated
    new = rotated["token"]
    assert new.startswith("berth_at_")
    assert new != old
    assert rotated["tokenId"] == created["tokenId"]
    assert rotated["scopes"] == created["scope"]

    assert not await _works(coordinator, old)
    assert await _works(coordinator, new)
    status, shown, _ = await coordinator.call(
        "GET", f"/deploy-tokens/{created['tokenId']}", token=admin_token
    )
    assert status == 200, shown
    assert shown["secretSuffix"] == new[-4:]
    assert parse_time(shown["rotatedAt"]) == parse_time(rotated["rotatedAt"])
    assert new not in json.dumps(shown)


async def test_rotate_with_mismatched_confirmation_is_refused(
    coordinator: Coordinator, admin_token: str
) -> None:
    first = await mint_token(coordinator, admin_token, ["servers:read"], name="first")
    second = await mint_token(coordinator, admin_token, ["servers:read"], name="second")
    response = await coordinator.call(
        "POST",
        f"/deploy-tokens/{first['tokenId']}/rotate",
        token=admin_token,
        json=_confirm(second["tokenId"]),
    )
    error = assert_error(response, 400, "invalid_request")
    assert "confirmation" in error["message"]
    response = await coordinator.call(
        "POST", f"/deploy-tokens/{first['tokenId']}/rotate", token=admin_token, json={}
    )
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {"confirmation"}
    assert await _works(coordinator, first["token"])
    assert await _works(coordinator, second["token"])


async def test_revoke_is_final_and_idempotent(coordinator: Coordinator, admin_token: str) -> None:
    created = await mint_token(coordinator, admin_token, ["servers:read"])
    path = f"/deploy-tokens/{created['tokenId']}/revoke"

    response = await coordinator.call(
        "POST", path, token=admin_token, json=_confirm("tok_someone_else")
    )
    assert_error(response, 400, "invalid_request")
    assert await _works(coordinator, created["token"])

    status, first, _ = await coordinator.call(
        "POST", path, token=admin_token, json=_confirm(created["tokenId"])
    )
    assert status == 200, first
    assert not await _works(coordinator, created["token"])

    status, again, _ = await coordinator.call(
        "POST", path, token=admin_token, json=_confirm(created["tokenId"])
    )
    assert status == 200, again
    assert again == first
    assert not await _works(coordinator, created["token"])

    status, shown, _ = await coordinator.call(
        "GET", f"/deploy-tokens/{created['tokenId']}", token=admin_token
    )
    assert status == 200, shown
    assert shown["status"] == "revoked"
    assert parse_time(shown["revokedAt"]) == parse_time(first["revokedAt"])

    response = await coordinator.call(
        "POST",
        f"/deploy-tokens/{created['tokenId']}/rotate",
        token=admin_token,
        json=_confirm(created["tokenId"]),
    )
    assert_error(response, 409, "conflict")
    assert not await _works(coordinator, created["token"])


async def test_list_filters_by_status(coordinator: Coordinator, admin_token: str) -> None:
    keep = await mint_token(coordinator, admin_token, ["servers:read"], name="keep")
    gone = await mint_token(coordinator, admin_token, ["servers:read"], name="gone")
    status, _, _ = await coordinator.call(
        "POST",
        f"/deploy-tokens/{gone['tokenId']}/revoke",
        token=admin_token,
        json=_confirm(gone["tokenId"]),
    )
    assert status == 200
    status, revoked, _ = await coordinator.call(
        "GET", "/deploy-tokens?status=revoked", token=admin_token
    )
    assert status == 200, revoked
    assert [t["tokenId"] for t in revoked["items"]] == [gone["tokenId"]]
    status, active, _ = await coordinator.call(
        "GET", "/deploy-tokens?status=active", token=admin_token
    )
    assert status == 200, active
    assert keep["tokenId"] in {t["tokenId"] for t in active["items"]}
    assert gone["tokenId"] not in {t["tokenId"] for t in active["items"]}


async def test_unknown_token_is_404(coordinator: Coordinator, admin_token: str) -> None:
    response = await coordinator.call("GET", "/deploy-tokens/tok_missing", token=admin_token)
    assert_error(response, 404, "not_found")
    response = await coordinator.call(
        "POST",
        "/deploy-tokens/tok_missing/revoke",
        token=admin_token,
        json=_confirm("tok_missing"),
    )
    assert_error(response, 404, "not_found")


async def test_token_cannot_mint_more_than_it_has(
    coordinator: Coordinator, admin_token: str
) -> None:
    minter = (await mint_token(coordinator, admin_token, ["deploy-tokens:write"]))["token"]
    for wanted in (["*"], ["servers:write"], ["deploy-tokens:write", "servers:read"]):
        response = await coordinator.call(
            "POST",
            "/deploy-tokens",
            token=minter,
            json={"displayName": "escalate", "scope": {"permissions": wanted}},
        )
        assert_error(response, 403, "forbidden")
    assert await models.ApiToken.all().count() == 2

    # A subset of its own permissions is fine (the refusals above are not blanket refusals).
    status, body, _ = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=minter,
        json={"displayName": "same", "scope": {"permissions": ["deploy-tokens:write"]}},
    )
    assert status == 201, body


async def test_token_cannot_rotate_a_more_powerful_token(
    coordinator: Coordinator, admin_token: str
) -> None:
    minter = (await mint_token(coordinator, admin_token, ["deploy-tokens:write"]))["token"]
    status, listed, _ = await coordinator.call("GET", "/deploy-tokens", token=admin_token)
    assert status == 200
    admin_id = next(t["tokenId"] for t in listed["items"] if t["scope"]["permissions"] == ["*"])
    response = await coordinator.call(
        "POST", f"/deploy-tokens/{admin_id}/rotate", token=minter, json=_confirm(admin_id)
    )
    # A token wider than the caller looks absent to it (see test_token_scope).
    assert_error(response, 404, "not_found")
    assert await _works(coordinator, admin_token)


async def test_token_cannot_revoke_a_more_powerful_token_but_can_revoke_itself(
    coordinator: Coordinator, admin_token: str
) -> None:
    minted = await mint_token(coordinator, admin_token, ["deploy-tokens:write"])
    minter = minted["token"]
    status, listed, _ = await coordinator.call("GET", "/deploy-tokens", token=admin_token)
    assert status == 200
    admin_id = next(t["tokenId"] for t in listed["items"] if t["scope"]["permissions"] == ["*"])
    response = await coordinator.call(
        "POST", f"/deploy-tokens/{admin_id}/revoke", token=minter, json=_confirm(admin_id)
    )
    # A token wider than the caller looks absent to it (see test_token_scope).
    assert_error(response, 404, "not_found")
    assert await _works(coordinator, admin_token)

    own_id = minted["tokenId"]
    status, _, _ = await coordinator.call(
        "POST", f"/deploy-tokens/{own_id}/revoke", token=minter, json=_confirm(own_id)
    )
    assert status == 200
    status, _, _ = await coordinator.call("GET", "/deploy-tokens", token=minter)
    assert status == 401


async def test_server_scoped_token_cannot_mint_an_unscoped_token(
    coordinator: Coordinator, admin_token: str
) -> None:
    a = await coordinator.add_server(admin_token, "a")
    b = await coordinator.add_server(admin_token, "b")
    scoped = await mint_token(
        coordinator, admin_token, ["deploy-tokens:write", "servers:read"], server_ids=[a["id"]]
    )
    for targets in ([], [b["id"]], [a["id"], b["id"]]):
        response = await coordinator.call(
            "POST",
            "/deploy-tokens",
            token=scoped["token"],
            json={
                "displayName": "wider",
                "scope": {"permissions": ["servers:read"], "deploymentTargetIds": targets},
            },
        )
        assert_error(response, 403, "forbidden")
    status, body, _ = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=scoped["token"],
        json={
            "displayName": "same",
            "scope": {"permissions": ["servers:read"], "deploymentTargetIds": [a["id"]]},
        },
    )
    assert status == 201, body


async def test_server_scoped_token_sees_only_its_servers(
    coordinator: Coordinator, admin_token: str
) -> None:
    a = await coordinator.add_server(admin_token, "a")
    b = await coordinator.add_server(admin_token, "b")
    token = (
        await mint_token(
            coordinator, admin_token, ["servers:read", "servers:write"], server_ids=[a["id"]]
        )
    )["token"]

    status, listed, _ = await coordinator.call("GET", "/servers", token=token)
    assert status == 200, listed
    assert [s["id"] for s in listed["items"]] == [a["id"]]
    status, counted, _ = await coordinator.call("GET", "/servers/count", token=token)
    assert status == 200, counted
    assert counted == {"count": 1}
    status, shown, _ = await coordinator.call("GET", f"/servers/{a['id']}", token=token)
    assert status == 200, shown

    hidden = [
        ("GET", f"/servers/{b['id']}", None),
        ("GET", f"/servers/{b['id']}/delete-check", None),
        ("POST", f"/servers/{b['id']}/rename", {"name": "stolen"}),
        ("POST", f"/servers/{b['id']}/deactivate", {}),
        ("POST", f"/servers/{b['id']}/agent-enrollments", {}),
    ]
    for method, path, body in hidden:
        response = await coordinator.call(method, path, token=token, json=body)
        assert_error(response, 404, "not_found")
    row = await models.Server.get(id=b["id"])
    assert (row.name, row.lifecycle_status) == ("b", "active")

    # The admin still sees both.
    status, counted, _ = await coordinator.call("GET", "/servers/count", token=admin_token)
    assert counted == {"count": 2}


async def _collect(coordinator: Coordinator, token: str, path: str, limit: int) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        status, page, _ = await coordinator.call("GET", path + query, token=token)
        assert status == 200, page
        assert len(page["items"]) <= limit
        # The last item's page says so (nextCursor null): no trailing empty page is needed.
        assert page["items"] or not ids, f"empty page after a cursor (limit={limit})"
        ids.extend(item["tokenId"] if "tokenId" in item else item["id"] for item in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            return ids
        assert page["items"], "a page with a cursor must not be empty"
    raise AssertionError("pagination did not terminate")


PAGE_SIZES = (1, 3, 4, 8, 9, 100)  # with 8 items: ragged, exact multiples, all, more than all


async def test_deploy_token_pagination_returns_every_token_once(
    coordinator: Coordinator, admin_token: str
) -> None:
    expected = {
        (await mint_token(coordinator, admin_token, [], name=f"t{i}"))["tokenId"] for i in range(7)
    }
    expected |= {t.id for t in await models.ApiToken.all()}
    assert len(expected) == 8
    for limit in PAGE_SIZES:
        ids = await _collect(coordinator, admin_token, "/deploy-tokens", limit)
        assert len(ids) == len(set(ids)) == 8, limit
        assert set(ids) == expected, limit
        assert ids == sorted(ids)


async def test_server_pagination_returns_every_server_once(
    coordinator: Coordinator, admin_token: str
) -> None:
    expected = {(await coordinator.add_server(admin_token, f"s{i}"))["id"] for i in range(8)}
    for limit in PAGE_SIZES:
        ids = await _collect(coordinator, admin_token, "/servers", limit)
        assert len(ids) == len(set(ids)) == 8, limit
        assert set(ids) == expected, limit


@pytest.mark.parametrize(
    ("path", "largest"), [("/deploy-tokens", 100), ("/servers", 500), ("/audit-events", 500)]
)
async def test_out_of_range_limit_is_400(
    coordinator: Coordinator, admin_token: str, path: str, largest: int
) -> None:
    for limit in ("0", "-1", "501", str(largest + 1), "many"):
        response = await coordinator.call("GET", f"{path}?limit={limit}", token=admin_token)
        error = assert_error(response, 400, "invalid_request")
        assert problem_fields(error) == {"limit"}, limit
    for limit in ("1", str(largest)):
        status, body, _ = await coordinator.call("GET", f"{path}?limit={limit}", token=admin_token)
        assert status == 200, body
