"""Input the fuzzer found answered with 500: refused at the edge with a 4xx envelope instead."""

from tests.harness import Coordinator
from tests.unit.coordinator.support import assert_error, mint_token, problem_fields

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
