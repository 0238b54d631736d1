"""Transport behaviour: the error envelope for routing errors, and X-Request-ID everywhere."""

import re
from datetime import datetime

from tests.harness import Coordinator
from tests.unit.coordinator.support import MINTED_REQUEST_ID, assert_error, header


async def test_unknown_route_is_404_envelope(coordinator: Coordinator, admin_token: str) -> None:
    for path in ("/nope", "/servers/abc/def/ghi", "/v2/servers"):
        error = assert_error(
            await coordinator.call("GET", path, token=admin_token), 404, "not_found"
        )
        assert error["message"] == "no such route", path


async def test_wrong_method_is_405_envelope_with_allow(
    coordinator: Coordinator, admin_token: str
) -> None:
    for method, path, allowed in (
        ("PUT", "/servers", {"GET", "POST"}),
        ("DELETE", "/deploy-tokens", {"GET", "POST"}),
        ("POST", "/openapi.json", {"GET"}),
        ("PATCH", "/servers/srv_x", {"GET", "DELETE"}),
    ):
        response = await coordinator.call(method, path, token=admin_token)
        error = assert_error(response, 405, "method_not_allowed")
        assert error["retriable"] is False
        allow = header(response[2], "Allow") or ""
        assert {m.strip() for m in allow.split(",")} - {"HEAD"} == allowed, (path, allow)


async def test_request_id_is_minted_on_success_and_error(coordinator: Coordinator) -> None:
    seen: set[str] = set()
    for method, path, expected in (
        ("GET", "/bootstrap/auth/status", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/servers", 401),
        ("GET", "/missing", 404),
    ):
        status, body, headers = await coordinator.call(method, path)
        assert status == expected, body
        value = header(headers, "X-Request-ID")
        assert value is not None, path
        assert re.fullmatch(MINTED_REQUEST_ID, value), value
        if status >= 400:
            assert body["requestId"] == value
        seen.add(value)
    assert len(seen) == 4, "each request gets its own id"


async def test_valid_client_request_id_is_echoed(coordinator: Coordinator) -> None:
    for incoming in ("my-request.123:abc", "a", "X" * 128, "req_0123456789abcdef01234567"):
        sent = {"X-Request-ID": incoming}
        status, _, headers = await coordinator.call("GET", "/bootstrap/auth/status", headers=sent)
        assert status == 200
        assert header(headers, "X-Request-ID") == incoming
        status, body, headers = await coordinator.call("GET", "/servers", headers=sent)
        assert_error((status, body, headers), 401, "unauthorized")
        assert body["requestId"] == incoming


async def test_invalid_client_request_id_is_replaced(coordinator: Coordinator) -> None:
    for incoming in ("has spaces in it", "X" * 129, "a" * 200, "semi;colon", "quote'd", "ümlaut"):
        for path, status in (("/bootstrap/auth/status", 200), ("/missing", 404)):
            response = await coordinator.call("GET", path, headers={"X-Request-ID": incoming})
            assert response[0] == status, response
            value = header(response[2], "X-Request-ID")
            assert value is not None
            assert value != incoming
            assert re.fullmatch(MINTED_REQUEST_ID, value), value
            if status == 404:
                assert_error(response, 404, "not_found")
                assert response[1]["requestId"] == value


async def test_request_id_is_recorded_on_the_audit_event(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, created, headers = await coordinator.call(
        "POST",
        "/servers",
        token=admin_token,
        json={"name": "web-1"},
        headers={"X-Request-ID": "trace-42"},
    )
    assert status == 201, created
    assert header(headers, "X-Request-ID") == "trace-42"
    status, events, _ = await coordinator.call(
        "GET", f"/audit-events?aggregateId={created['id']}", token=admin_token
    )
    assert status == 200, events
    assert [e["requestId"] for e in events["items"]] == ["trace-42"]
    # Appaloft's names, beside Berth's deprecated ones (same values).
    [event] = events["items"]
    assert event["auditEventId"] == event["id"]
    assert event["createdAt"] == event["occurredAt"]
    assert datetime.fromisoformat(event["createdAt"]) <= datetime.fromisoformat(
        events["generatedAt"]
    )


async def test_validation_error_envelope_shape(coordinator: Coordinator, admin_token: str) -> None:
    status, body, headers = await coordinator.call(
        "POST", "/servers", token=admin_token, json={"name": 5, "extra": True}
    )
    error = assert_error((status, body, headers), 400, "invalid_request")
    assert error["retriable"] is False
    problems = error["details"]["problems"]
    assert {p["field"] for p in problems} == {"name", "extra"}
    assert all(set(p) == {"field", "message"} and p["message"] for p in problems)
    assert header(headers, "WWW-Authenticate") is None
