"""The bodies of the routes that set and remove a variable, shared by its owners' routes
(environments, resources): parse, find the owner (scoped), call ``variable_sets``."""

from collections.abc import Awaitable, Callable

from coordinator import variables
from coordinator.api.routing import Call
from coordinator.api.workspace_schemas import DeleteVariableRequest, SetVariableRequest
from coordinator.workspace import variable_sets

# The owner the path names, looked up in the caller's scope (another tenant's id is a 404).
OwnerLookup = Callable[[], Awaitable[variable_sets.Owner]]


async def set_variable(call: Call, owner: OwnerLookup) -> None:
    """Insert or replace the variable the body names by ``key`` + ``exposure``."""
    body = call.body(SetVariableRequest)
    await variable_sets.set_variable(
        call.actor,
        await owner(),
        call.keyring,
        key=body.key,
        value=body.value,
        exposure=body.exposure,
        kind=body.kind,
        is_secret=body.is_secret,
        request_id=call.request_id,
    )


async def delete_variable(call: Call, owner: OwnerLookup) -> None:
    """Delete the variable named by path ``key`` + body ``exposure`` (the key is checked before
    the owner is looked up)."""
    body = call.body(DeleteVariableRequest)
    key = call.path["key"]
    variables.require_valid_key(key)
    await variable_sets.delete_variable(
        call.actor, await owner(), key=key, exposure=body.exposure, request_id=call.request_id
    )
