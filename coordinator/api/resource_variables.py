"""Resource variables and secrets (encrypted at rest, masked on every read), effective config."""

from datetime import UTC, datetime
from typing import Final

from coordinator import resource_config, variables
from coordinator.api import variable_writes
from coordinator.api.resource_schemas import (
    ConfigOverride,
    CreateSecretRequest,
    EffectiveConfigResponse,
    RotateSecretRequest,
    SecretCommandResponse,
    SecretItem,
    SecretList,
    SecretQuery,
    SecretShow,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import NoQuery
from coordinator.api.workspace_schemas import DeleteVariableRequest, SetVariableRequest
from coordinator.db import models
from coordinator.lookup import get_resource
from coordinator.workspace import resource_secrets, variable_sets
from coordinator.workspace.mutability import current_resource

TAG = "resources"
SCOPE: Final = "resource"


def _owner(resource_id: str) -> variable_sets.Owner:
    return variable_sets.Owner(SCOPE, resource_id, current_resource, "on this resource")


@route(
    "POST",
    "/resources/{resourceId}/variables",
    summary="Set a resource variable (overrides the environment's; secrets encrypted at rest)",
    tag=TAG,
    permission="resources:write",
    body=SetVariableRequest,
)
async def set_variable(call: Call) -> None:
    """Insert or replace the variable named by ``key`` + ``exposure``; answers ``null``."""
    await variable_writes.set_variable(call, lambda: _variables_owner(call))


@route(
    "DELETE",
    "/resources/{resourceId}/variables/{key}",
    summary="Remove a resource variable for one exposure",
    tag=TAG,
    permission="resources:write",
    body=DeleteVariableRequest,
)
async def delete_variable(call: Call) -> None:
    """Delete the variable named by path ``key`` + body ``exposure``; answers ``null``."""
    await variable_writes.delete_variable(call, lambda: _variables_owner(call))


async def _variables_owner(call: Call) -> variable_sets.Owner:
    row = await get_resource(call.actor, call.path["resourceId"])
    return _owner(row.id)


def _secret_item(resource_id: str, row: models.Variable) -> SecretItem:
    entry = variables.masked_entry(row, SCOPE)
    return SecretItem(resource_id=resource_id, **entry.model_dump())


@route(
    "GET",
    "/resources/{resourceId}/secrets",
    summary="List the resource's secrets (values masked)",
    tag=TAG,
    permission="resources:read",
    query=SecretQuery,
    response=SecretList,
)
async def list_secrets(call: Call) -> SecretList:
    """``resources.secrets.list/v1`` for one exposure; every value reads ``"****"``."""
    exposure = call.query(SecretQuery).exposure
    resource_id, rows = await resource_secrets.listed(call.actor, call.path["resourceId"], exposure)
    return SecretList(
        resource_id=resource_id,
        items=[_secret_item(resource_id, v) for v in rows],
        generated_at=datetime.now(UTC),
    )


@route(
    "GET",
    "/resources/{resourceId}/secrets/{key}",
    summary="Show one secret (value masked)",
    tag=TAG,
    permission="resources:read",
    query=SecretQuery,
    response=SecretShow,
)
async def show_secret(call: Call) -> SecretShow:
    """``resources.secrets.show/v1``; the value reads ``"****"``."""
    exposure = call.query(SecretQuery).exposure
    key = call.path["key"]
    variables.require_valid_key(key)
    resource_id, secret = await resource_secrets.one(
        call.actor, call.path["resourceId"], key, exposure
    )
    return SecretShow(secret=_secret_item(resource_id, secret), generated_at=datetime.now(UTC))


@route(
    "POST",
    "/resources/{resourceId}/secrets",
    summary="Create a secret (encrypted at rest, never shown again)",
    tag=TAG,
    permission="resources:write",
    body=CreateSecretRequest,
    response=SecretCommandResponse,
    status=201,
)
async def create_secret(call: Call) -> SecretCommandResponse:
    """Create a secret; an existing variable with the same key and exposure is a conflict."""
    body = call.body(CreateSecretRequest)
    resource_id = await resource_secrets.create(
        call.actor,
        call.keyring,
        call.path["resourceId"],
        body.key,
        body.value,
        body.exposure,
        call.request_id,
    )
    return SecretCommandResponse(resource_id=resource_id, key=body.key, exposure=body.exposure)


@route(
    "POST",
    "/resources/{resourceId}/secrets/{key}",
    summary="Rotate a secret's value",
    tag=TAG,
    permission="resources:write",
    body=RotateSecretRequest,
    response=SecretCommandResponse,
)
async def rotate_secret(call: Call) -> SecretCommandResponse:
    """Replace the value of an existing secret (re-encrypted with the active key)."""
    body = call.body(RotateSecretRequest)
    key = call.path["key"]
    variables.require_valid_key(key)
    resource_id = await resource_secrets.rotate(
        call.actor,
        call.keyring,
        call.path["resourceId"],
        key,
        body.value,
        body.exposure,
        call.request_id,
    )
    return SecretCommandResponse(resource_id=resource_id, key=key, exposure=body.exposure)


@route(
    "DELETE",
    "/resources/{resourceId}/secrets/{key}",
    summary="Delete a secret",
    tag=TAG,
    permission="resources:write",
    query=SecretQuery,
    response=SecretCommandResponse,
)
async def delete_secret(call: Call) -> SecretCommandResponse:
    """Delete the secret named by path ``key`` + query ``exposure`` (default ``runtime``)."""
    exposure = call.query(SecretQuery).exposure
    key = call.path["key"]
    variables.require_valid_key(key)
    resource_id = await resource_secrets.delete(
        call.actor, call.path["resourceId"], key, exposure, call.request_id
    )
    return SecretCommandResponse(resource_id=resource_id, key=key, exposure=exposure)


@route(
    "GET",
    "/resources/{resourceId}/effective-config",
    summary="Variables in effect for the resource after precedence (values masked)",
    tag=TAG,
    permission="resources:read",
    query=NoQuery,
    response=EffectiveConfigResponse,
)
async def effective_config(call: Call) -> EffectiveConfigResponse:
    """``resources.effective-config/v1``: resource entries override environment entries."""
    row = await get_resource(call.actor, call.path["resourceId"])
    owned = await variables.list_variables(SCOPE, row.id)
    environment_id: str = row.environment_id  # type: ignore[attr-defined]
    inherited = {
        (v.key, v.exposure) for v in await variables.list_variables("environment", environment_id)
    }
    return EffectiveConfigResponse(
        resource_id=row.id,
        environment_id=environment_id,
        owned_entries=[variables.masked_entry(v, SCOPE) for v in owned],
        effective_entries=[
            variables.masked_entry(v, scope)
            for v, scope in await resource_config.effective_rows(row)
        ],
        overrides=[
            ConfigOverride(
                key=v.key, exposure=v.exposure, scope=SCOPE, overridden_scope="environment"
            )
            for v in owned
            if (v.key, v.exposure) in inherited
        ],
        precedence=list(resource_config.PRECEDENCE),
        generated_at=datetime.now(UTC),
    )
