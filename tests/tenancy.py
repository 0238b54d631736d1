"""Tenancy checks generated from the served OpenAPI document and the permission catalogue.

Every operation of ``/openapi.json`` becomes a case, so a route added later is walked without
anyone listing it: ``operations`` reads the document, ``request_for`` builds the request that
names one organization's rows (path parameters, body and query fields), and
``unauthorized_input`` builds a request that an authorized caller gets refused only for its
input (so the authorization answer is observed without changing anything).
"""

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from coordinator.auth import API_TOKEN_PREFIX, hash_token, mint_token
from coordinator.db import account_models, models
from coordinator.db.organization_models import OrganizationMember
from coordinator.ids import new_id

# Body and query fields that name a row: the key in a tenant's ids they are aimed at.
ID_FIELDS: Final[dict[str, str]] = {
    "organizationId": "organizationId",
    "projectId": "projectId",
    "environmentId": "environmentId",
    "targetEnvironmentId": "otherEnvironmentId",
    "resourceId": "resourceId",
    "serverId": "serverId",
    "deploymentId": "deploymentId",
    "domainBindingId": "domainBindingId",
    "certificateId": "certificateId",
    "dependencyResourceId": "dependencyResourceId",
    "storageVolumeId": "storageVolumeId",
    "taskId": "taskId",
    "runId": "runId",
    "tokenId": "tokenId",
    "sessionId": "terminalSessionId",
    "scope.serverId": "serverId",
    "scope.projectId": "projectId",
    "scope.environmentId": "environmentId",
    "scope.resourceId": "resourceId",
    "scope.deploymentId": "deploymentId",
    "aggregateId": "resourceId",
    "rollbackCandidateDeploymentId": "deploymentId",
    "subscriptionId": "subscriptionId",
    "policyId": "policyId",
    "fromMemberId": "memberId",
    "toMemberId": "memberId",
    "dnsProviderId": "dnsProviderId",
    "targetDependencyResourceId": "dependencyResourceId",
    "targetStorageVolumeId": "storageVolumeId",
    "backupTargetId": "backupTargetId",
}
# Fields that list rows (token scopes): aimed as a one-item list.
ID_LIST_FIELDS: Final[dict[str, str]] = {
    "projectIds": "projectId",
    "environmentIds": "environmentId",
    "resourceIds": "resourceId",
    "deploymentTargetIds": "serverId",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Fields whose smallest schema instance is refused by the handler's own rules (not the schema):
# the values a real caller sends, so a request gets past validation to the scoped lookup.
FIELD_VALUES: Final[dict[str, Any]] = {
    "domainName": "tenancy.example.test",
    "connectionUrl": "postgres://u:tenancy-pw@db.example.com/app",
    "destinationPath": "/var/lib/tenancy/",
    "events": ["deployment.failed"],
    "newPassword": "tenancy walks every route 43",
    "before": _now,
    "from": "2026-01-01T00:00:00Z",
    "to": _now,
    "scope.kind": "resource",
    "bucket": "hour",
}


def _field_value(name: str) -> Any:
    value = FIELD_VALUES[name]
    return value() if callable(value) else value


@dataclass(frozen=True)
class Operation:
    """One operation of the served document."""

    method: str
    path: str
    permission: str | None
    definition: dict[str, Any]

    @property
    def label(self) -> str:
        """``METHOD /path``: the pytest id, so a failure names the route."""
        return f"{self.method} {self.path}"

    @property
    def path_names(self) -> list[str]:
        """Path parameter names, in order."""
        return [p["name"] for p in self.definition.get("parameters", []) if p["in"] == "path"]

    @property
    def query_names(self) -> list[str]:
        """Query parameter names."""
        return [p["name"] for p in self.definition.get("parameters", []) if p["in"] == "query"]

    @property
    def streams(self) -> bool:
        """Whether a success is a ``text/event-stream`` (it would not end by itself)."""
        ok = self.definition.get("responses", {}).get("200", {})
        return "text/event-stream" in ok.get("content", {})

    @property
    def body_schema(self) -> dict[str, Any] | None:
        """The JSON body's schema (possibly a ``$ref``), or None without a body."""
        content = self.definition.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        return dict(schema) if schema is not None else None


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation of ``document``, in document order."""
    return [
        Operation(method.upper(), path, definition.get("x-berth-permission"), definition)
        for path, methods in document["paths"].items()
        for method, definition in methods.items()
    ]


def path_key(operation: Operation, name: str) -> str:
    """The tenant id a path parameter names (``sessionId`` is two kinds of session)."""
    if name == "sessionId":
        return "accountSessionId" if operation.path.startswith("/account") else "terminalSessionId"
    # Two kinds of policy and of certificate share a parameter name.
    if name == "policyId" and operation.path.startswith("/dependency-resources/backup-policies"):
        return "backupPolicyId"
    if name == "policyId" and operation.path.startswith("/storage-volumes/backup-policies"):
        return "volumeBackupPolicyId"
    if name == "certificateId" and operation.path.startswith("/wildcard-certificates"):
        return "wildcardCertificateId"
    if name == "backupId" and operation.path.startswith("/storage-volumes/backups"):
        return "volumeBackupId"
    return name


def resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref`` chain followed into the document's components."""
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def _instance(
    schema: dict[str, Any], document: dict[str, Any], ids: dict[str, str], depth: int = 0
) -> Any:
    """The smallest instance of ``schema``: required properties, plus every id field aimed."""
    schema = resolve(schema, document)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for union in ("anyOf", "oneOf"):
        if union in schema:
            options = [s for s in schema[union] if resolve(s, document).get("type") != "null"]
            return _instance(options[0], document, ids, depth) if options else None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 6:
            return {}
        properties: dict[str, Any] = schema.get("properties", {})
        aimed = {n for n in properties if n in ID_FIELDS or n in ID_LIST_FIELDS}
        # An optional consent (acknowledgeDataOverwrite) is given too: without it the handler
        # refuses the input before it looks anything up.
        consents = {
            n
            for n in properties
            if n.startswith("acknowledge")
            and resolve(properties[n], document).get("type") == "boolean"
        }
        wanted = set(schema.get("required", [])) | aimed | consents
        out: dict[str, Any] = {}
        for name in wanted:
            if name in ID_FIELDS and ID_FIELDS[name] in ids:
                out[name] = ids[ID_FIELDS[name]]
            elif name in ID_LIST_FIELDS and ID_LIST_FIELDS[name] in ids:
                out[name] = [ids[ID_LIST_FIELDS[name]]]
            elif name in FIELD_VALUES:
                out[name] = _field_value(name)
            elif name.startswith(("acknowledge", "confirm")) and (
                resolve(properties[name], document).get("type") == "boolean"
            ):
                out[name] = True  # the caller's explicit consent to what the command does
            elif name in properties:
                out[name] = _instance(properties[name], document, ids, depth + 1)
        return out
    if kind == "array":
        count = int(schema.get("minItems", 0))
        items = schema.get("items", {})
        return [_instance(items, document, ids, depth + 1) for _ in range(count)]
    if kind == "string":
        if schema.get("format") == "date-time":
            return datetime.now(UTC).isoformat()
        return "x" * max(int(schema.get("minLength", 1)), 1)
    if kind in ("integer", "number"):
        return schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
    if kind == "boolean":
        return False
    return None


def _confirm(body: Any, path_ids: dict[str, str]) -> None:
    """Fill confirmations (``confirm``, ``confirmation.<id>``) with the named ids."""
    if not isinstance(body, dict):
        return
    first = next(iter(path_ids.values()), None)
    if "confirm" in body and first is not None:
        body["confirm"] = first
    confirmation = body.get("confirmation")
    if isinstance(confirmation, dict):
        for name in confirmation:
            if name in path_ids:
                confirmation[name] = path_ids[name]


@dataclass(frozen=True)
class Request:
    """One generated request."""

    method: str
    path: str
    body: Any
    # Whether any input names a row of the tenant whose ids were used.
    names_rows: bool
    named_in_path: bool


def request_for(operation: Operation, document: dict[str, Any], ids: dict[str, str]) -> Request:
    """A request for ``operation`` naming the rows in ``ids`` wherever an input can name one."""
    path = operation.path
    path_ids: dict[str, str] = {}
    for name in operation.path_names:
        value = ids.get(path_key(operation, name), "missing")
        path_ids[name] = value
        path = path.replace("{" + name + "}", value)
    query = {
        name: ids[ID_FIELDS[name]]
        for name in operation.query_names
        if name in ID_FIELDS and ID_FIELDS[name] in ids
    }
    if "scope.kind" in operation.query_names:
        # One scope at a time: the resource's (the kind FIELD_VALUES names).
        query = {"scope.resourceId": ids.get("resourceId", "missing")}
        query["scope.resourceId"] = ids.get("resourceId", "missing")
    for parameter in operation.definition.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] == "query" and parameter.get("required") and name not in query:
            query[name] = _field_value(name) if name in FIELD_VALUES else "x"
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    body = None
    schema = operation.body_schema
    if schema is not None:
        body = _instance(schema, document, ids)
        _confirm(body, path_ids)
    named = {v for v in ids.values() if "_" in v}  # row ids, not keys or category words
    in_path = any(v in named for v in path_ids.values())
    in_body = any(v in json.dumps(body) for v in named)
    in_query = any(v in named for v in query.values())
    return Request(operation.method, path, body, in_path or in_body or in_query, in_path)


def unauthorized_input(operation: Operation) -> Request:
    """A request an authorized caller is refused only for its input, before any handler runs.

    Ids are malformed (404 by the path rule), bodies are a JSON list (400 for every object
    model): both are checked after authorization (coordinator/api/routing.py), so a 401/403
    means the caller was refused for who it is, anything else means it was let through.
    """
    path = operation.path
    for name in operation.path_names:
        path = path.replace("{" + name + "}", "!")
    body: Any = [] if operation.body_schema is not None else None
    if body is None and "limit" in operation.query_names:
        path += "?limit=-1"
    return Request(operation.method, path, body, names_rows=False, named_in_path=False)


def runs_for_real(operation: Operation) -> bool:
    """Whether ``unauthorized_input`` cannot stop a let-through mutation before its handler.

    Such an operation (``POST /auth/logout``, ``POST /terminal-sessions/expire``...) acts on
    the caller itself, so each call gets a credential of its own.
    """
    refusable = bool(operation.path_names) or operation.body_schema is not None
    return operation.method != "GET" and not refusable


# The rows a project scope covers (servers, tokens, subscriptions, audit events and host
# terminals belong to the organization: a project-scoped token may see them by design).
PROJECT_ROWS: Final = frozenset(
    {
        "projectId",
        "environmentId",
        "otherEnvironmentId",
        "resourceId",
        "deploymentId",
        "workId",
        "domainBindingId",
        "certificateId",
        "storageVolumeId",
        "attachmentId",
        "dependencyResourceId",
        "bindingId",
        "planId",
        "taskId",
        "runId",
    }
)


@dataclass
class Tenant:
    """An organization made for a test: its id, its admin's token, and the ids of its rows."""

    organization_id: str
    token: str
    ids: dict[str, str] = field(default_factory=dict)
    # The admin's e-mail (its password, when given, is the caller's to log in with).
    email: str = ""


async def other_organization(name: str, password_hash: str | None = None) -> Tenant:
    """A second organization with its own admin and all-permission token (and, with
    ``password_hash``, a password the admin can log in with).

    This writes the rows the bootstrap writes for the first one (coordinator/tokens/
    first_admin.py): the organization, its owner's user and membership, and a token.
    """
    now = datetime.now(UTC)
    org_id = new_id("org")
    user_id = new_id("usr")
    token = mint_token(API_TOKEN_PREFIX)
    _ = await models.Organization.create(id=org_id, name=name, slug=name.lower(), created_at=now)
    email = f"admin@{name.lower()}.example.com"
    _ = await models.User.create(
        id=user_id,
        organization_id=org_id,
        email=email,
        display_name=f"{name} admin",
        role="admin",
        created_at=now,
    )
    _ = await OrganizationMember.create(
        id=new_id("mem"),
        organization_id=org_id,
        user_id=user_id,
        role="owner",
        joined_at=now,
        updated_at=now,
    )
    _ = await models.ApiToken.create(
        id=new_id("tok"),
        organization_id=org_id,
        user_id=user_id,
        display_name=f"{name} admin",
        token_hash=hash_token(token),
        secret_suffix=token[-4:],
        scope={"permissions": ["*"]},
        status="active",
        created_at=now,
    )
    if password_hash is not None:
        _ = await account_models.AccountCredential.create(
            id=user_id,
            user_id=user_id,
            password_hash=password_hash,
            password_changed_at=now,
            updated_at=now,
        )
    return Tenant(org_id, token, {"organizationId": org_id}, email)


def leaked(body: Any, ids: dict[str, str], request: Request | None = None) -> list[str]:
    """The ids of ``ids`` (names of rows, not shared words) that an answer shows.

    An id the request itself sent may be echoed (``filters.aggregateId``), but never inside
    the answer's ``items``: those are rows.
    """
    text = body if isinstance(body, str) else repr(body)
    sent = f"{request.path} {json.dumps(request.body)}" if request is not None else ""
    rows = repr(body.get("items")) if isinstance(body, dict) else text
    return sorted(
        {
            v
            for v in ids.values()
            if "_" in v and ((v in text and v not in sent) or (v in rows and v in sent))
        }
    )


async def module_database(root: Path, migrated_sqlite: Path) -> str:
    """A fresh database for one module's shared stack, as ``tests/conftest.py``'s
    ``database_url`` makes one per test: a copy of the migrated SQLite file, or the emptied
    Postgres database of ``BERTH_TEST_DATABASE_URL``."""
    url = os.environ.get("BERTH_TEST_DATABASE_URL")
    if url:
        from tests.conftest import _reset_postgres

        await _reset_postgres(url)
        return url
    target = root / "berth.sqlite3"
    shutil.copyfile(migrated_sqlite, target)
    return f"sqlite://{target}"
