"""Accounts on a real coordinator: password login, cookie + CSRF, sessions, lockout, TOTP."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiohttp

from coordinator.accounts import passwords, totp
from coordinator.accounts.lockout import ACCOUNT_FREE_FAILURES
from coordinator.db import account_models, models
from tests.harness import Coordinator, eventually, scaled
from tests.unit.coordinator.support import assert_error, header
from tests.unit.coordinator.test_deployment_engine import create_deployment, make_world
from tests.unit.coordinator.test_token_streams import _stream_until_closed

EMAIL: Final = "admin@example.com"
PASSWORD: Final = "tram-lantern-opal-93"
LOGIN: Final = "/auth/login"


async def _set_password(coordinator: Coordinator, admin_token: str) -> None:
    status, body, _ = await coordinator.call(
        "POST", "/account/password", token=admin_token, json={"newPassword": PASSWORD}
    )
    assert status == 200, body


async def _login(
    coordinator: Coordinator, password: str = PASSWORD, **extra: Any
) -> tuple[int, Any, list[str]]:
    assert coordinator.http is not None
    async with coordinator.http.post(
        coordinator.url + LOGIN, json={"email": EMAIL, "password": password, **extra}
    ) as response:
        body = await response.json(content_type=None)
        return response.status, body, response.headers.getall("Set-Cookie", [])


def _cookie(token: str, csrf: str | None = None) -> dict[str, str]:
    value = f"berth_session={token}"
    if csrf is not None:
        value += f"; berth_csrf={csrf}"
    return {"Cookie": value}


async def test_login_answers_a_bearer_session_and_sets_its_cookies(
    coordinator: Coordinator, admin_token: str
) -> None:
    assert_error(
        await coordinator.call("POST", LOGIN, json={"email": EMAIL, "password": "x"}),
        401,
        "unauthorized",
    )
    await _set_password(coordinator, admin_token)
    cross_site = await coordinator.call(
        "POST",
        LOGIN,
        json={"email": EMAIL, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert_error(cross_site, 403, "forbidden")  # login CSRF
    status, body, cookies = await _login(coordinator, clientKind="cli")
    assert status == 201, body
    assert body["token"].startswith("berth_ss_")
    assert body["clientKind"] == "cli"
    assert body["secondFactor"] == "none"
    session_cookie = next(c for c in cookies if c.startswith("berth_session="))
    assert body["token"] in session_cookie
    assert "HttpOnly" in session_cookie
    assert "SameSite=Lax" in session_cookie
    assert "Path=/" in session_cookie
    assert "Secure" not in session_cookie  # plain HTTP on loopback
    csrf_cookie = next(c for c in cookies if c.startswith("berth_csrf="))
    assert body["csrfToken"] in csrf_cookie
    assert "HttpOnly" not in csrf_cookie
    # The session works as a bearer token wherever an API token does.
    status, profile, _ = await coordinator.call("GET", "/account/profile", token=body["token"])
    assert status == 200, profile
    assert profile["email"] == EMAIL
    assert profile["passwordConfigured"] is True
    status, servers, _ = await coordinator.call("GET", "/servers", token=body["token"])
    assert status == 200, servers
    stored = await account_models.AccountSession.get(id=body["sessionId"])
    assert stored.token_hash != body["token"]
    credential = await account_models.AccountCredential.get(user_id=body["userId"])
    assert credential.password_hash.startswith("$argon2id$")
    events = await models.AuditEvent.filter(event_type__startswith="account.").values_list(
        "event_type", "payload"
    )
    assert "account.logged-in" in {e for e, _ in events}
    assert PASSWORD not in repr(events)
    failed = [p for e, p in events if e == "account.login-failed"]
    assert failed
    assert failed[0]["reason"] == "wrong-password"
    status, boot, _ = await coordinator.call("GET", "/bootstrap/auth/status")
    method = next(m for m in boot["loginMethods"] if m["key"] == "local-password")
    assert method["configured"] is True
    assert method["enabled"] is True


async def test_cookie_mutations_need_the_csrf_token_and_same_origin(
    coordinator: Coordinator, admin_token: str
) -> None:
    await _set_password(coordinator, admin_token)
    _, session, _ = await _login(coordinator)
    token, csrf = session["token"], session["csrfToken"]
    status, body, _ = await coordinator.call("GET", "/account/profile", headers=_cookie(token))
    assert status == 200, body
    change = {"displayName": "Ops"}
    refused = await coordinator.call(
        "POST", "/account/profile", json=change, headers=_cookie(token, csrf)
    )
    assert_error(refused, 403, "forbidden")
    wrong = await coordinator.call(
        "POST",
        "/account/profile",
        json=change,
        headers={**_cookie(token, csrf), "X-CSRF-Token": "not-it"},
    )
    assert_error(wrong, 403, "forbidden")
    elsewhere = await coordinator.call(
        "POST",
        "/account/profile",
        json=change,
        headers={**_cookie(token), "X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert_error(elsewhere, 403, "forbidden")
    assert (await models.User.get(email=EMAIL)).display_name == "Admin"  # nothing changed
    status, body, _ = await coordinator.call(
        "POST", "/account/profile", json=change, headers={**_cookie(token), "X-CSRF-Token": csrf}
    )
    assert status == 200, body
    assert body["displayName"] == "Ops"
    # The bearer path needs no CSRF token: a page cannot set Authorization on its own.
    status, body, _ = await coordinator.call(
        "POST", "/account/profile", token=token, json={"displayName": "Ops 2"}
    )
    assert status == 200, body


async def test_revoking_a_session_ends_its_open_stream_and_its_requests(
    coordinator: Coordinator, admin_token: str
) -> None:
    await _set_password(coordinator, admin_token)
    _, first, _ = await _login(coordinator)
    _, second, _ = await _login(coordinator)
    world = await make_world(coordinator, admin_token)
    deployment_id = await create_deployment(coordinator, admin_token, world)
    path = f"/deployments/{deployment_id}/events/stream?untilTerminal=true"
    opened = asyncio.Event()
    stream = asyncio.create_task(_stream_until_closed(coordinator, first["token"], path, opened))
    await asyncio.wait_for(opened.wait(), scaled(10))
    status, listed, _ = await coordinator.call("GET", "/account/sessions", token=second["token"])
    assert status == 200, listed
    current = {item["sessionId"]: item["current"] for item in listed["items"]}
    assert current == {first["sessionId"]: False, second["sessionId"]: True}
    status, body, _ = await coordinator.call(
        "POST", f"/account/sessions/{first['sessionId']}/revoke", token=second["token"], json={}
    )
    assert status == 200, body
    await asyncio.wait_for(stream, scaled(10))  # the coordinator closed it
    assert_error(
        await coordinator.call("GET", "/account/profile", token=first["token"]),
        401,
        "unauthorized",
    )
    assert_error(
        await coordinator.call(
            "POST",
            "/account/sessions/sess_00000000000000000000000000/revoke",
            token=second["token"],
            json={},
        ),
        404,
        "not_found",
    )
    status, body, _ = await coordinator.call("POST", "/auth/logout", token=second["token"])
    assert status == 200, body
    assert_error(
        await coordinator.call("GET", "/account/profile", token=second["token"]),
        401,
        "unauthorized",
    )


async def test_repeated_failures_lock_the_account_with_429_and_retry_after(
    coordinator: Coordinator, admin_token: str
) -> None:
    await _set_password(coordinator, admin_token)
    for _ in range(ACCOUNT_FREE_FAILURES):
        status, body, _ = await _login(coordinator, "wrong-password-123")
        assert status == 401, body
    locked = await coordinator.call("POST", LOGIN, json={"email": EMAIL, "password": PASSWORD})
    assert_error(locked, 429, "rate_limited")
    assert int(header(locked[2], "Retry-After") or 0) >= 1
    rows = await models.AuditEvent.filter(event_type="account.login-failed").order_by("id")
    reasons = [(row.payload or {}).get("reason") for row in rows]
    assert reasons.count("wrong-password") == ACCOUNT_FREE_FAILURES
    assert reasons[-1] == "locked-out"


async def test_password_change_needs_the_old_one_refuses_weak_ones_and_ends_other_sessions(
    coordinator: Coordinator, admin_token: str
) -> None:
    weak = await coordinator.call(
        "POST", "/account/password", token=admin_token, json={"newPassword": "password1234"}
    )
    assert_error(weak, 400, "invalid_request")
    assert not await account_models.AccountCredential.exists()
    await _set_password(coordinator, admin_token)
    _, one, _ = await _login(coordinator)
    _, two, _ = await _login(coordinator)
    new = "quartz-mantle-river-51"
    wrong = await coordinator.call(
        "POST",
        "/account/password",
        token=one["token"],
        json={"currentPassword": "not-the-password", "newPassword": new},
    )
    assert_error(wrong, 401, "unauthorized")
    status, body, _ = await coordinator.call(
        "POST",
        "/account/password",
        token=one["token"],
        json={"currentPassword": PASSWORD, "newPassword": new},
    )
    assert status == 200, body
    assert body["revokedSessionIds"] == [two["sessionId"]]
    assert (await coordinator.call("GET", "/account/profile", token=one["token"]))[0] == 200
    assert (await coordinator.call("GET", "/account/profile", token=two["token"]))[0] == 401
    assert (await _login(coordinator))[0] == 401
    assert (await _login(coordinator, new))[0] == 201


async def test_the_last_admin_cannot_delete_its_account(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, me, _ = await coordinator.call("GET", "/account/profile", token=admin_token)
    assert status == 200, me
    mismatch = await coordinator.call(
        "DELETE", "/account", token=admin_token, json={"confirmation": {"userId": "usr_other"}}
    )
    assert_error(mismatch, 400, "invalid_request")
    last = await coordinator.call(
        "DELETE", "/account", token=admin_token, json={"confirmation": {"userId": me["userId"]}}
    )
    assert_error(last, 409, "conflict")
    assert await models.User.exists(id=me["userId"])


async def test_totp_enrolment_login_replay_and_recovery_codes(
    coordinator: Coordinator, admin_token: str
) -> None:
    await _set_password(coordinator, admin_token)
    status, enrolment, _ = await coordinator.call(
        "POST", "/account/two-factor/enable", token=admin_token
    )
    assert status == 200, enrolment
    secret = enrolment["secret"]
    assert secret in enrolment["otpauthUri"]
    stored = await account_models.AccountCredential.get(user_id__isnull=False)
    assert secret not in (stored.totp_pending_secret or "")  # encrypted at rest
    assert (await _login(coordinator))[0] == 201  # not on until confirmed
    bad = await coordinator.call(
        "POST", "/account/two-factor/confirm", token=admin_token, json={"code": "000000"}
    )
    if totp.current_code(secret) != "000000":
        assert_error(bad, 400, "invalid_request")
    status, enabled, _ = await coordinator.call(
        "POST",
        "/account/two-factor/confirm",
        token=admin_token,
        json={"code": totp.current_code(secret)},
    )
    assert status == 200, enabled
    codes = enabled["recoveryCodes"]
    assert len(codes) == totp.RECOVERY_CODE_COUNT
    status, asked, _ = await _login(coordinator)
    assert status == 401, asked
    assert asked["error"]["details"] == {"secondFactorRequired": "totp"}

    # The code that confirmed enrolment was used: wait for the next step, then use it once.
    used = totp.current_code(secret)

    async def next_step() -> bool:
        return totp.current_code(secret) != used

    await eventually(next_step, timeout=40, what="the next TOTP step")
    code = totp.current_code(secret)
    status, body, _ = await _login(coordinator, totpCode=code)
    assert status == 201, body
    assert body["secondFactor"] == "totp"
    replay = await _login(coordinator, totpCode=code)
    assert replay[0] == 401, replay[1]
    status, body, _ = await _login(coordinator, recoveryCode=codes[0].upper())
    assert status == 201, body
    assert body["secondFactor"] == "recovery-code"
    assert (await _login(coordinator, recoveryCode=codes[0]))[0] == 401  # one-time
    status, body, _ = await coordinator.call(
        "POST", "/account/two-factor/disable", token=admin_token, json={"code": codes[1]}
    )
    assert status == 200, body
    assert (await _login(coordinator))[0] == 201


async def test_an_idle_session_expires(tmp_path: Path, database_url: str) -> None:
    harness = Coordinator(tmp_path / "c", database_url, session_idle_seconds=2.0)
    await harness.start()
    try:
        admin = await harness.bootstrap()
        await _set_password(harness, admin)
        _, session, _ = await _login(harness)
        status, _, _ = await harness.call("GET", "/account/profile", token=session["token"])
        assert status == 200

        # Watched in the database, not by using the session (each use keeps it alive).
        async def idle_long_enough() -> bool:
            row = await account_models.AccountSession.get(id=session["sessionId"])
            return datetime.now(UTC) - row.last_active_at > timedelta(seconds=2.5)

        await eventually(idle_long_enough, what="the session to be idle for its timeout")
        error = assert_error(
            await harness.call("GET", "/account/profile", token=session["token"]),
            401,
            "unauthorized",
        )
        assert "idle" in error["message"]
    finally:
        await harness.close()


async def test_the_first_admin_can_get_a_password_at_bootstrap(coordinator: Coordinator) -> None:
    first_admin = {"email": EMAIL, "displayName": "Admin"}
    weak = await coordinator.call(
        "POST", "/bootstrap/auth/first-admin", json={**first_admin, "password": "admin"}
    )
    assert_error(weak, 400, "invalid_request")
    assert not await models.User.exists()  # nothing half-created
    status, before, _ = await coordinator.call("GET", "/bootstrap/auth/status")
    method = next(m for m in before["loginMethods"] if m["key"] == "local-password")
    assert method["configured"] is False
    assert before["loginUrl"] == LOGIN
    status, created, _ = await coordinator.call(
        "POST", "/bootstrap/auth/first-admin", json={**first_admin, "password": PASSWORD}
    )
    assert status == 201, created
    assert PASSWORD not in repr(await models.AuditEvent.all().values_list("payload", flat=True))
    status, body, _ = await _login(coordinator)
    assert status == 201, body
    assert body["userId"] == created["userId"]


async def test_a_cookie_session_streams_and_logging_out_ends_the_stream(
    coordinator: Coordinator, admin_token: str
) -> None:
    await _set_password(coordinator, admin_token)
    _, session, _ = await _login(coordinator)
    cookie = _cookie(session["token"], session["csrfToken"])
    world = await make_world(coordinator, admin_token)
    deployment_id = await create_deployment(coordinator, admin_token, world)
    path = f"/deployments/{deployment_id}/events/stream?untilTerminal=true"
    assert coordinator.http is not None
    opened = asyncio.Event()

    async def listen() -> None:
        assert coordinator.http is not None
        async with coordinator.http.get(
            coordinator.url + path, headers=cookie, timeout=aiohttp.ClientTimeout(total=scaled(30))
        ) as response:
            assert response.status == 200, await response.text()
            opened.set()
            with contextlib.suppress(aiohttp.ClientPayloadError):
                async for _ in response.content.iter_any():
                    pass

    stream = asyncio.create_task(listen())
    await asyncio.wait_for(opened.wait(), scaled(10))
    no_csrf = await coordinator.call("POST", "/auth/logout", headers=cookie)
    assert_error(no_csrf, 403, "forbidden")
    assert not stream.done()
    status, body, headers = await coordinator.call(
        "POST", "/auth/logout", headers={**cookie, "X-CSRF-Token": session["csrfToken"]}
    )
    assert status == 200, body
    assert "Max-Age=0" in (header(headers, "Set-Cookie") or "")  # the cookies are cleared
    await asyncio.wait_for(stream, scaled(10))


async def test_a_cookie_session_is_rate_limited_as_a_token_not_as_its_address(
    coordinator: Coordinator, admin_token: str
) -> None:
    await _set_password(coordinator, admin_token)
    _, session, _ = await _login(coordinator)
    settings = coordinator.settings()
    _, _, anonymous = await coordinator.call("GET", "/bootstrap/auth/status")
    assert header(anonymous, "X-RateLimit-Limit") == str(settings.rate_limit_anonymous_per_minute)
    status, _, by_cookie = await coordinator.call(
        "GET", "/account/profile", headers=_cookie(session["token"])
    )
    assert status == 200
    assert header(by_cookie, "X-RateLimit-Limit") == str(settings.rate_limit_token_per_minute)


async def test_an_admin_who_is_not_the_last_can_delete_its_account(
    coordinator: Coordinator, admin_token: str
) -> None:
    # A second admin (organizations and invitations come next; created directly here).
    second = await models.User.create(
        id="usr_second",
        organization_id="org_default",
        email="second@example.com",
        display_name="Second",
        role="admin",
        created_at=datetime.now(UTC),
    )
    _ = await account_models.AccountCredential.create(
        id=second.id,
        user_id=second.id,
        password_hash=await passwords.hash_password(PASSWORD),
        password_changed_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
    )
    status, session, _ = await coordinator.call(
        "POST", LOGIN, json={"email": "second@example.com", "password": PASSWORD}
    )
    assert status == 201, session
    status, body, _ = await coordinator.call(
        "DELETE",
        "/account",
        token=session["token"],
        json={"confirmation": {"userId": second.id}},
    )
    assert status == 200, body
    assert body["userId"] == second.id
    assert not await models.User.exists(id=second.id)
    assert (await coordinator.call("GET", "/account/profile", token=session["token"]))[0] == 401
    assert await models.AuditEvent.exists(event_type="account.deleted", aggregate_id=second.id)
    # The first admin is now the last one again.
    status, me, _ = await coordinator.call("GET", "/account/profile", token=admin_token)
    assert status == 200, me
