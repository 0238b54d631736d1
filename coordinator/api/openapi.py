"""Build the OpenAPI 3.1 document from the route declarations and their pydantic models."""

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from coordinator.api.routing import ROUTES, Route
from coordinator.errors import ErrorEnvelope
from shared.version import AGENT_CONNECT_PATH, PACKAGE_VERSION, PROTOCOL_VERSION

_PATH_PARAM = re.compile(r"{([A-Za-z0-9_]+)}")
_REF = "#/components/schemas/{model}"
_ERROR_STATUSES = {
    "400": "Invalid request (error envelope)",
    "401": "Missing or invalid bearer token (error envelope)",
    "403": "Token lacks the permission (error envelope)",
    "404": "Not found or hidden (error envelope)",
    "409": "Conflicts with current state (error envelope)",
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
        "parameters": [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in _PATH_PARAM.findall(r.path)
        ],
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
    elif r.raw_response:
        content = {r.raw_response: {"schema": {"type": "string"}}}
    else:
        content = {"application/json": {"schema": {"type": "null"}}}
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
