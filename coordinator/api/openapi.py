"""Build the OpenAPI 3.1 document from the route declarations and their pydantic models."""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from coordinator.api.routing import PATH_PARAMETERS, ROUTES, Route, path_names
from coordinator.errors import ErrorEnvelope
from shared.version import AGENT_CONNECT_PATH, PACKAGE_VERSION, PROTOCOL_VERSION

_REF = "#/components/schemas/{model}"
_ERROR_STATUSES = {
    "400": "Invalid request (error envelope)",
    "401": "Missing or invalid bearer token (error envelope)",
    "403": "Token lacks the permission (error envelope)",
    "404": "Not found or hidden (error envelope)",
    "409": "Conflicts with current state (error envelope)",
}
# Only declared by the routes that can answer them (see ``Route.errors`` and request bodies).
_OPTIONAL_STATUSES = {
    "401": "Missing or invalid credential (error envelope)",
    "408": "The request body did not arrive in time (error envelope)",
    "413": "Request body is larger than the coordinator accepts (error envelope)",
    "503": (
        "A dependency is unavailable: the server's agent is not connected, or DNS did not"
        " answer (error envelope; retriable)"
    ),
    "504": "The server's agent did not answer in time (error envelope; retriable)",
}
# Aiohttp refuses a body over ``client_max_size`` on every route that reads one.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _path_parameter(name: str) -> dict[str, Any]:
    rule = PATH_PARAMETERS[name]
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": rule.pattern, "maxLength": rule.max_length},
        "description": (
            "an id: a malformed one names nothing (404)"
            if rule.malformed_is_missing
            else "a malformed value is a 400"
        ),
    }


def _event_stream(events: tuple[str, ...]) -> dict[str, Any]:
    """One server-sent event (OpenAPI 3.1: the ``schema`` of ``text/event-stream`` is per event)."""
    return {
        "schema": {
            "type": "object",
            "properties": {
                "event": {"type": "string", "enum": list(events)},
                "data": {"type": "string", "contentMediaType": "application/json"},
                "id": {"type": "string"},
                "retry": {"type": "integer"},
            },
            "required": ["event", "data"],
        }
    }


# Every limited operation can answer 429 (coordinator/ratelimit.py); these headers come with it
# (X-RateLimit-* are on every limited response, Retry-After only on the 429).
_RATE_LIMIT_HEADERS = {
    "Retry-After": "Seconds to wait before the next request is allowed",
    "X-RateLimit-Limit": "Requests per minute of the bucket this request was charged to",
    "X-RateLimit-Remaining": "Requests left in that bucket now",
    "X-RateLimit-Reset": "Unix time (seconds) at which the bucket is full again",
}


def _rate_limited(error_ref: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": "Too many requests (error envelope); retry after Retry-After seconds",
        "headers": {
            name: {"description": text, "schema": {"type": "integer", "minimum": 0}}
            for name, text in _RATE_LIMIT_HEADERS.items()
        },
        "content": {"application/json": {"schema": error_ref}},
    }


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorEnvelope, "serialization")]
    for r in ROUTES:
        if r.body:
            wanted.append((r.body, "validation"))
        if r.query:
            wanted.append((r.query, "validation"))
        if r.response:
            wanted.append((r.response, "serialization"))
    return list(dict.fromkeys(wanted))


def _query_parameters(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    ref = schema.get("$ref", "")
    resolved = defs.get(ref.rsplit("/", 1)[-1], schema)
    required = set(resolved.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in resolved.get("properties", {}).items()
    ]


def _operation(r: Route, refs: dict[Any, Any], defs: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": r.summary,
        "tags": [r.tag],
        "operationId": f"{r.tag}.{r.handler.__name__}",
        "parameters": [_path_parameter(n) for n in path_names(r.path)],
    }
    if r.query:
        op["parameters"] += _query_parameters(refs[(r.query, "validation")], defs)
    if r.body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(r.body, "validation")]}},
        }
    if r.response:
        content: dict[str, Any] = {
            "application/json": {"schema": refs[(r.response, "serialization")]}
        }
    elif r.raw_response == "text/event-stream":
        content = {r.raw_response: _event_stream(r.events)}
    elif r.raw_response:
        content = {r.raw_response: {"schema": {"type": "string"}}}
    else:
        content = {"application/json": {"schema": {"type": "null"}}}
    if r.response and r.raw_response:
        # A JSON answer that can also stream (audit exports' format=jsonl|csv).
        for media_type in r.raw_response.split(","):
            content[media_type] = {"schema": {"type": "string"}}
    error_ref = refs[(ErrorEnvelope, "serialization")]
    op["responses"] = {str(r.status): {"description": "Success", "content": content}}
    for status, text in _ERROR_STATUSES.items():
        if r.permission is None and status in ("401", "403"):
            continue
        op["responses"][status] = {
            "description": text,
            "content": {"application/json": {"schema": error_ref}},
        }
    op["responses"]["429"] = _rate_limited(error_ref)
    optional = set(r.errors)
    if r.body is not None or r.method in _BODY_METHODS:
        optional.update((408, 413))
    for status, text in _OPTIONAL_STATUSES.items():
        if int(status) in optional:
            op["responses"][status] = {
                "description": text,
                "content": {"application/json": {"schema": error_ref}},
            }
    if r.permission is not None:
        op["security"] = [{"bearerAuth": []}]
        op["x-berth-permission"] = r.permission
    else:
        op["security"] = []
    return op


def build_openapi() -> dict[str, Any]:
    """Return the OpenAPI document for every registered route."""
    refs, top = models_json_schema(_models(), ref_template=_REF)
    defs: dict[str, Any] = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        paths.setdefault(r.path, {})[r.method.lower()] = _operation(r, refs, defs)
    paths[AGENT_CONNECT_PATH] = {
        "get": {
            "summary": f"Agent websocket (subprotocol {PROTOCOL_VERSION}); see docs/protocol.md",
            "tags": ["agent"],
            "operationId": "agent.connect",
            "security": [],
            "responses": {
                "101": {"description": "Switching protocols"},
                "426": {
                    "description": "Subprotocol not supported (error envelope)",
                    "content": {
                        "application/json": {"schema": refs[(ErrorEnvelope, "serialization")]}
                    },
                },
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Berth coordinator API", "version": PACKAGE_VERSION},
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }
