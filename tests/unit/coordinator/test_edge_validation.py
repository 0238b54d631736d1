"""Input the fuzzer found answered with 500: refused at the edge with a 4xx envelope instead."""

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest

from coordinator.variables import KEY_PATTERN
from tests.harness import Coordinator, eventually, scaled
from tests.unit.coordinator.support import assert_error, header, mint_token, problem_fields
from tests.unit.coordinator.test_deployment_engine import create_deployment, make_world

NOT_UTF8 = b'{"name": "\xff\xfe\x84"}'


async def test_a_body_that_is_not_utf8_is_400_on_every_json_route(
    coordinator: Coordinator, admin_token: str
) -> None:
    headers = {"Content-Type": "application/json"}
    public = (("POST", "/bootstrap/auth/first-admin"), ("POST", "/agent/v1/enroll"))
    for method, path in public:
        response = await coordinator.call(method, path, data=NOT_UTF8, headers=headers)
        error = assert_error(response, 400, "invalid_request")
        assert error["message"] == "request body is not valid JSON", path
    for method, path in (("POST", "/projects"), ("POST", "/deploy-tokens"), ("POST", "/servers")):
        response = await coordinator.call(
            method, path, token=admin_token, data=NOT_UTF8, headers=headers
        )
        assert_error(response, 400, "invalid_request")
    status, body, _ = await coordinator.call("GET", "/projects/count", token=admin_token)
    assert (status, body["count"]) == (200, 0), "nothing was written"


async def test_a_long_or_malformed_path_id_is_404_on_every_show_route(
    coordinator: Coordinator, admin_token: str
) -> None:
    for value in ("x" * 41, "srv_" + "0" * 60, "a b", "%00", "%E2%82%AC"):
        for path in (
            "/servers/{}",
            "/projects/{}",
            "/environments/{}",
            "/resources/{}",
            "/deployments/{}",
            "/deploy-tokens/{}",
            "/terminal-sessions/{}",
            "/deployments/{}/events",
        ):
            response = await coordinator.call("GET", path.format(value), token=admin_token)
            assert_error(response, 404, "not_found")
    # Without a token the 401 still comes first: a malformed id reveals nothing either way.
    assert_error(await coordinator.call("GET", "/servers/" + "x" * 41), 401, "unauthorized")


async def test_a_malformed_variable_key_in_the_path_is_400(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, body, _ = await coordinator.call(
        "POST", "/projects", token=admin_token, json={"name": "shop"}
    )
    assert status == 201, body
    project_id = body["id"]
    status, body, _ = await coordinator.call(
        "POST",
        "/environments",
        token=admin_token,
        json={"projectId": project_id, "name": "production"},
    )
    assert status == 201, body
    path = f"/environments/{body['id']}/variables/" + "K" * 300
    response = await coordinator.call("DELETE", path, token=admin_token, json={})
    error = assert_error(response, 400, "invalid_request")
    assert problem_fields(error) == {"key"}


async def test_a_cursor_longer_than_an_id_is_400_not_500(
    coordinator: Coordinator, admin_token: str
) -> None:
    await mint_token(coordinator, admin_token, ["servers:read"])
    for path in ("/projects", "/environments", "/deploy-tokens", "/audit-events", "/servers"):
        for cursor in ("z" * 41, "z" * 64):
            response = await coordinator.call("GET", f"{path}?cursor={cursor}", token=admin_token)
            assert problem_fields(assert_error(response, 400, "invalid_request")) == {"cursor"}
        status, body, _ = await coordinator.call(
            "GET", f"{path}?cursor={'z' * 40}", token=admin_token
        )
        assert (status, body["items"]) == (200, []), (path, body)


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return dict(document["paths"][path][method.lower()])


async def test_openapi_declares_what_routes_really_answer(coordinator: Coordinator) -> None:
    status, document, _ = await coordinator.call("GET", "/openapi.json")
    assert status == 200
    for method, path in (
        ("GET", "/servers/{serverId}/capacity"),
        ("GET", "/resources/{resourceId}/runtime-logs"),
        ("POST", "/resources/{resourceId}/runtime/restart"),
        ("POST", "/terminal-sessions"),
    ):
        assert {"503", "504"} <= set(_operation(document, method, path)["responses"]), path
    # Public routes that check their own credential can answer 401.
    assert "401" in _operation(document, "GET", "/agent/v1/archives/{archiveId}")["responses"]
    assert "401" in _operation(document, "POST", "/agent/v1/enroll")["responses"]
    # Every route with a request body can be refused with 413.
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if "requestBody" in operation:
                assert "413" in operation["responses"], (method, path)
    # Path parameters carry their validation rules.
    show = _operation(document, "GET", "/servers/{serverId}")["parameters"][0]["schema"]
    assert show["maxLength"] == 40
    assert "pattern" in show
    key = _operation(document, "DELETE", "/resources/{resourceId}/variables/{key}")
    assert key["parameters"][1]["schema"]["pattern"] == KEY_PATTERN
    # Confirmation ids carry the id rules and say what they must repeat.
    schemas = document["components"]["schemas"]
    for model, field in (
        ("ServerConfirmation", "serverId"),
        ("TokenConfirmation", "tokenId"),
        ("ProjectConfirmation", "projectId"),
        ("CancelRequest", "confirm"),
    ):
        rule = schemas[model]["properties"][field]
        assert (rule["maxLength"], "pattern" in rule) == (40, True), model
        assert rule["description"].startswith("must equal the path's"), model
    # Server-sent events are described per event, not as one plain string.
    stream = _operation(document, "GET", "/deployments/{deploymentId}/events/stream")
    event = stream["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert event["type"] == "object"
    assert event["properties"]["event"]["enum"] == ["deployment-event", "end"]


async def test_aiohttp_own_400_for_an_oversized_request_line_is_the_envelope(
    coordinator: Coordinator,
) -> None:
    host, port = "127.0.0.1", coordinator.port
    for request in (
        f"GET /servers?x={'a' * 20000} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        f"GET /servers HTTP/1.1\r\nHost: {host}\r\nX-Big: {'b' * 20000}\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request.encode())
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), scaled(10))
        finally:
            writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines)
        assert status_line.split(" ")[1] == "400", status_line
        assert header(headers, "Content-Type") == "application/json; charset=utf-8"
        body = json.loads(payload)
        assert_error((400, body, headers), 400, "invalid_request")
        assert len(body["error"]["message"]) < 300


async def test_deployments_of_a_deleted_server_stay_readable(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    deployment_id = await create_deployment(coordinator, admin_token, world)
    await world.agent.close()
    server_id = world.server_id
    status, body, _ = await coordinator.call(
        "POST", f"/servers/{server_id}/deactivate", token=admin_token, json={}
    )
    assert status == 200, body
    status, body, _ = await coordinator.call(
        "DELETE",
        f"/servers/{server_id}",
        token=admin_token,
        json={"confirmation": {"serverId": server_id}},
    )
    assert status == 200, body
    for path in ("", "/events", "/logs", "/recovery-readiness"):
        status, body, _ = await coordinator.call(
            "GET", f"/deployments/{deployment_id}{path}", token=admin_token
        )
        assert status == 200, (path, body)
    status, body, _ = await coordinator.call(
        "GET", f"/deployments/{deployment_id}", token=admin_token
    )
    related_server = body["relatedContext"]["server"]
    assert (related_server["id"], related_server["deleted"]) == (server_id, True)
    assert related_server["name"] is None
    assert body["deployment"]["serverId"] == server_id
    status, body, _ = await coordinator.call("GET", "/deployments", token=admin_token)
    assert status == 200, body
    assert [d["id"] for d in body["items"]] == [deployment_id]
    # Commands and resource reads that look the server up never answer 500 (the agent routes
    # answer 503 "not connected" for a deleted server, as for any server without a link).
    resource = world.resource_id
    for method, path, payload in (
        ("POST", f"/deployments/{deployment_id}/retry", {}),
        ("POST", f"/deployments/{deployment_id}/rollback", {}),
        ("POST", f"/resources/{resource}/redeploy", {}),
        ("GET", f"/resources/{resource}/health", None),
        ("GET", f"/resources/{resource}/runtime-logs", None),
        ("POST", f"/resources/{resource}/runtime/restart", {}),
        ("GET", f"/resources/{resource}", None),
        ("GET", f"/runtime-usage/inspect?scopeKind=server&serverId={server_id}", None),
    ):
        status, body, _ = await coordinator.call(method, path, token=admin_token, json=payload)
        assert status < 500 or body["error"]["code"] == "unavailable", (path, body)


async def test_an_sse_reader_leaving_is_not_an_unhandled_error(
    coordinator: Coordinator, admin_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    world = await make_world(coordinator, admin_token)
    deployment_id = await create_deployment(coordinator, admin_token, world)
    path = f"/deployments/{deployment_id}/events/stream"
    # A connection of its own, opened after the log level is set (aiohttp decides per connection
    # whether to write access log lines; that line is how the test sees the handler finish).
    async with aiohttp.ClientSession() as reader:
        response = await reader.get(
            coordinator.url + path, headers={"Authorization": f"Bearer {admin_token}"}
        )
        assert response.status == 200
        assert b"deployment-event" in await response.content.readuntil(b"\n\n")
        response.close()  # the reader goes away while the stream waits for more events
    status, body, _ = await coordinator.call(
        "POST",
        f"/deployments/{deployment_id}/cancel",
        token=admin_token,
        json={"confirm": deployment_id},
    )
    assert status == 200, body  # a new event: the stream writes to the closed connection

    def finished() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "aiohttp.access" and path in r.getMessage()]

    async def stream_finished() -> bool:
        return bool(finished())

    await eventually(stream_finished, what="the stream handler to finish")
    await world.agent.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert " 500 " not in finished()[0].getMessage()


async def test_a_404_never_reveals_the_data_dir(coordinator: Coordinator, admin_token: str) -> None:
    data_dir = str(coordinator.settings().data_dir)
    for method, path, token in (
        ("GET", "/agent/v1/package", None),
        ("GET", "/agent/v1/archives/arc_missing", "berth_adt_nope"),
        ("GET", "/no/such/route", admin_token),
        ("GET", "/servers/" + "x" * 50, admin_token),
    ):
        status, body, _ = await coordinator.call(method, path, token=token)
        assert status in (401, 404), (path, body)
        assert data_dir not in json.dumps(body), (path, body)
        assert "/dist" not in json.dumps(body), (path, body)


async def test_the_install_command_ignores_the_host_header(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, body, _ = await coordinator.call(
        "POST",
        "/servers",
        token=admin_token,
        json={"name": "web-1"},
        headers={"Host": "evil.example:443", "X-Forwarded-Host": "evil.example"},
    )
    assert status == 201, body
    command = body["installCommand"]
    assert "evil.example" not in command
    # Without --public-url: the address the request arrived on (here the loopback listener).
    assert f"--coordinator http://127.0.0.1:{coordinator.port} " in command


async def test_nul_characters_are_refused_before_the_database_sees_them(
    coordinator: Coordinator, admin_token: str
) -> None:
    # PostgreSQL cannot store U+0000 in text or JSON: it used to be a 500 there.
    for method, path, body in (
        ("POST", "/projects", {"name": "shop", "description": "a\u0000b"}),
        ("POST", "/projects", {"name": "shop", "tags": {"k\u0000": "v"}}),
        ("POST", "/servers", {"name": "web", "labels": ["x", ["y\u0000"]]}),
    ):
        response = await coordinator.call(method, path, token=admin_token, json=body)
        error = assert_error(response, 400, "invalid_request")
        assert "U+0000" in error["message"]
    response = await coordinator.call("GET", "/projects?cursor=a%00b", token=admin_token)
    assert problem_fields(assert_error(response, 400, "invalid_request")) == {"cursor"}
    status, body, _ = await coordinator.call("GET", "/projects/count", token=admin_token)
    assert (status, body["count"]) == (200, 0), "nothing was written"
    deep: Any = "x"
    for _ in range(900):
        deep = [deep]
    response = await coordinator.call("POST", "/projects", token=admin_token, json=deep)
    assert_error(response, 400, "invalid_request")
