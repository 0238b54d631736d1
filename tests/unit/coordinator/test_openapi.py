"""The OpenAPI document: complete, resolvable, secured, and true to the real responses."""

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

import coordinator.api  # noqa: F401  (registers every route in ROUTES)
from coordinator.api.openapi import build_openapi
from coordinator.api.routing import ROUTES, Route
from coordinator.api.schemas import (
    DeployTokenList,
    JoinTokenResponse,
    ServerShowResponse,
)
from coordinator.errors import ErrorEnvelope
from tests.harness import Coordinator
from tests.unit.coordinator.support import header

_REF_PREFIX = "#/components/schemas/"


def _route_id(route: Route) -> str:
    return f"{route.method} {route.path}"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The generated document, as JSON (the served one is checked to be identical)."""
    built: dict[str, Any] = json.loads(json.dumps(build_openapi()))
    return built


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ref = schema["$ref"]
    assert ref.startswith(_REF_PREFIX), ref
    name = ref.removeprefix(_REF_PREFIX)
    components = document["components"]["schemas"]
    assert name in components, f"dangling $ref {ref}"
    return name, components[name]


def _all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _all_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _all_refs(v)]
    return []


def _own_schema(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
    """The model's own JSON schema as the document should hold it (refs into components)."""
    schema = model.model_json_schema(by_alias=True, mode=mode, ref_template=_REF_PREFIX + "{model}")
    schema.pop("$defs", None)
    return schema


def _response_schema(document: dict[str, Any], route: Route) -> dict[str, Any]:
    operation = document["paths"][route.path][route.method.lower()]
    content = operation["responses"][str(route.status)]["content"]
    return dict(content["application/json"]["schema"])


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return dict(document["paths"][path][method.lower()])


def _route(method: str, path: str) -> Route:
    return next(r for r in ROUTES if r.method == method and r.path == path)


def _assert_documented_keys(document: dict[str, Any], value: Any, schema: dict[str, Any]) -> None:
    """Recursively check that every object has exactly the keys its schema documents."""
    if "$ref" in schema:
        _, schema = _resolve(document, schema)
    if "anyOf" in schema:
        if value is None:
            assert {"type": "null"} in schema["anyOf"], schema
            return
        branches = [b for b in schema["anyOf"] if b != {"type": "null"}]
        assert len(branches) == 1, schema
        _assert_documented_keys(document, value, branches[0])
        return
    if "properties" in schema:
        assert isinstance(value, dict), value
        assert set(value) == set(schema["properties"]), (schema.get("title"), set(value))
        for key, prop in schema["properties"].items():
            _assert_documented_keys(document, value[key], prop)
    elif schema.get("type") == "array" and "items" in schema:
        assert isinstance(value, list), value
        for item in value:
            _assert_documented_keys(document, item, schema["items"])


async def test_served_document_is_public_and_the_generated_one(
    coordinator: Coordinator, document: dict[str, Any]
) -> None:
    status, body, headers = await coordinator.call("GET", "/openapi.json")
    assert status == 200, body
    assert (header(headers, "Content-Type") or "").startswith("application/json")
    assert body == document


def test_document_is_openapi_3_1_with_bearer_auth(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }


def test_every_route_is_documented_with_its_method(document: dict[str, Any]) -> None:
    assert len(ROUTES) > 10
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert {(r.method, r.path) for r in ROUTES} <= documented
    operation_ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))
    for route in ROUTES:
        operation = _operation(document, route.method, route.path)
        declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", route.path)), _route_id(route)
        assert str(route.status) in operation["responses"], _route_id(route)


def test_every_ref_in_the_document_resolves(document: dict[str, Any]) -> None:
    refs = _all_refs(document)
    assert refs
    for ref in refs:
        _resolve(document, {"$ref": ref})


@pytest.mark.parametrize("route", [r for r in ROUTES if r.body], ids=_route_id)
def test_request_bodies_reference_their_model(document: dict[str, Any], route: Route) -> None:
    assert route.body is not None
    body = _operation(document, route.method, route.path)["requestBody"]
    assert body["required"] is True
    name, schema = _resolve(document, body["content"]["application/json"]["schema"])
    assert name == route.body.__name__
    assert schema == _own_schema(route.body, "validation")
    if schema.get("type") == "object":
        assert schema.get("additionalProperties") is False  # unknown fields are refused


@pytest.mark.parametrize("route", [r for r in ROUTES if r.query], ids=_route_id)
def test_query_parameters_match_their_model(document: dict[str, Any], route: Route) -> None:
    assert route.query is not None
    parameters = _operation(document, route.method, route.path)["parameters"]
    documented = {p["name"] for p in parameters if p["in"] == "query"}
    expected = route.query.model_json_schema(by_alias=True, mode="validation")
    assert documented == set(expected.get("properties", {}))


@pytest.mark.parametrize("route", [r for r in ROUTES if r.response], ids=_route_id)
def test_responses_reference_their_model(document: dict[str, Any], route: Route) -> None:
    assert route.response is not None
    name, schema = _resolve(document, _response_schema(document, route))
    assert name == route.response.__name__
    assert schema == _own_schema(route.response, "serialization")


@pytest.mark.parametrize("route", ROUTES, ids=_route_id)
def test_security_matches_the_route_permission(document: dict[str, Any], route: Route) -> None:
    operation = _operation(document, route.method, route.path)
    responses = operation["responses"]
    if route.permission is None:
        assert operation["security"] == []
        # A public route answers 401 only when it checks a credential of its own.
        assert ("401" in responses) == (401 in route.errors)
        assert "403" not in responses
        assert "x-berth-permission" not in operation
    else:
        assert operation["security"] == [{"bearerAuth": []}]
        assert operation["x-berth-permission"] == route.permission
        for status in ("401", "403"):
            name, _ = _resolve(document, responses[status]["content"]["application/json"]["schema"])
            assert name == "ErrorEnvelope"


def _check_against(
    document: dict[str, Any], model: type[BaseModel], route: Route, body: Any
) -> None:
    assert route.response is model
    model.model_validate(body)
    _assert_documented_keys(document, body, _response_schema(document, route))


async def test_real_responses_match_their_documented_models(
    coordinator: Coordinator, admin_token: str, document: dict[str, Any]
) -> None:
    status, created, _ = await coordinator.call(
        "POST", "/servers", token=admin_token, json={"name": "web-1", "host": "example.net"}
    )
    assert status == 201, created
    _check_against(document, JoinTokenResponse, _route("POST", "/servers"), created)

    for query in ("", "?includeRollups=false"):
        status, shown, _ = await coordinator.call(
            "GET", f"/servers/{created['id']}{query}", token=admin_token
        )
        assert status == 200, shown
        _check_against(document, ServerShowResponse, _route("GET", "/servers/{serverId}"), shown)

    status, tokens, _ = await coordinator.call("GET", "/deploy-tokens", token=admin_token)
    assert status == 200, tokens
    assert tokens["items"]
    _check_against(document, DeployTokenList, _route("GET", "/deploy-tokens"), tokens)


async def test_real_error_matches_the_documented_envelope(
    coordinator: Coordinator, document: dict[str, Any]
) -> None:
    status, body, _ = await coordinator.call("GET", "/servers")
    assert status == 401
    ErrorEnvelope.model_validate(body)
    schema = _operation(document, "GET", "/servers")["responses"]["401"]["content"]
    _assert_documented_keys(document, body, schema["application/json"]["schema"])


def test_key_checker_rejects_undocumented_and_missing_keys() -> None:
    # The recursive checker used above must be able to fail, or the tests prove nothing.
    document: dict[str, Any] = {
        "components": {
            "schemas": {
                "Inner": {"properties": {"a": {"type": "string"}}},
                "Outer": {
                    "properties": {
                        "inner": {
                            "anyOf": [{"$ref": "#/components/schemas/Inner"}, {"type": "null"}]
                        },
                        "list": {"type": "array", "items": {"$ref": "#/components/schemas/Inner"}},
                    }
                },
            }
        }
    }
    outer = {"$ref": "#/components/schemas/Outer"}
    _assert_documented_keys(document, {"inner": None, "list": [{"a": "x"}]}, outer)
    bad_values: list[dict[str, Any]] = [
        {"inner": {"a": "x", "b": 1}, "list": []},
        {"inner": None, "list": [{}]},
        {"inner": None},
        {"inner": None, "list": [], "extra": 1},
    ]
    for bad in bad_values:
        with pytest.raises(AssertionError):
            _assert_documented_keys(document, bad, outer)
