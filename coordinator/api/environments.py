"""Environment routes: lifecycle (create, rename, lock, archive, clone), variables, diff."""

from collections.abc import Iterable
from datetime import UTC, datetime

from coordinator import variables
from coordinator.api import variable_writes
from coordinator.api.routing import Call, route
from coordinator.api.schemas import CountResponse, IdResponse, NoQuery
from coordinator.api.workspace_schemas import (
    ArchiveRequest,
    CloneEnvironmentRequest,
    CountEnvironmentsQuery,
    CreateEnvironmentRequest,
    DeleteVariableRequest,
    EffectivePrecedenceResponse,
    EnvironmentDiff,
    EnvironmentDiffEntry,
    EnvironmentItem,
    EnvironmentList,
    ListEnvironmentsQuery,
    RenameEnvironmentRequest,
    SetVariableRequest,
)
from coordinator.db import models
from coordinator.lookup import get_environment
from coordinator.workspace import environments, variable_sets
from coordinator.workspace.environments import SCOPE

TAG = "environments"
PRECEDENCE = ("environment",)  # lowest to highest; project/resource layers come later


def environment_item(row: models.Environment, owned: Iterable[models.Variable]) -> EnvironmentItem:
    """Convert an environment row and its variables into the API item (secrets masked)."""
    return EnvironmentItem(
        id=row.id,
        project_id=row.project_id,  # type: ignore[attr-defined]
        name=row.name,
        kind=row.kind,
        parent_environment_id=row.parent_environment_id,
        lifecycle_status=environments.status(row),
        locked_at=row.locked_at,
        lock_reason=row.lock_reason,
        archived_at=row.archived_at,
        archive_reason=row.archive_reason,
        created_at=row.created_at,
        masked_variables=[variables.masked_entry(v, SCOPE) for v in owned],
    )


@route(
    "POST",
    "/environments",
    summary="Create an environment in a project",
    tag=TAG,
    permission="projects:write",
    body=CreateEnvironmentRequest,
    response=IdResponse,
    status=201,
)
async def create(call: Call) -> IdResponse:
    """Create an active environment; the project must be active."""
    body = call.body(CreateEnvironmentRequest)
    environment_id = await environments.create(
        call.actor, body.project_id, body.name, body.kind, call.request_id
    )
    return IdResponse(id=environment_id)


@route(
    "GET",
    "/environments",
    summary="List environments",
    tag=TAG,
    permission="projects:read",
    query=ListEnvironmentsQuery,
    response=EnvironmentList,
)
async def list_environments(call: Call) -> EnvironmentList:
    """List the environments the caller may see, oldest first, with cursor pagination."""
    query = call.query(ListEnvironmentsQuery)
    page, owned = await environments.page(
        call.actor, query.project_id, query.lifecycle_status, query.cursor, query.limit
    )
    return EnvironmentList(
        items=[environment_item(r, owned[r.id]) for r in page.items],
        next_cursor=page.next_cursor,
    )


@route(
    "GET",
    "/environments/count",
    summary="Count environments",
    tag=TAG,
    permission="projects:read",
    query=CountEnvironmentsQuery,
    response=CountResponse,
)
async def count(call: Call) -> CountResponse:
    """Count the environments the caller may see (optionally in one project)."""
    project_id = call.query(CountEnvironmentsQuery).project_id
    return CountResponse(count=await environments.count(call.actor, project_id))


@route(
    "GET",
    "/environments/{environmentId}",
    summary="Show an environment with its masked variables",
    tag=TAG,
    permission="projects:read",
    query=NoQuery,
    response=EnvironmentItem,
)
async def show(call: Call) -> EnvironmentItem:
    """One environment; secret values read ``"****"``."""
    row = await get_environment(call.actor, call.path["environmentId"])
    return environment_item(row, await variables.list_variables(SCOPE, row.id))


@route(
    "POST",
    "/environments/{environmentId}/rename",
    summary="Rename an active environment",
    tag=TAG,
    permission="projects:write",
    body=RenameEnvironmentRequest,
    response=IdResponse,
)
async def rename(call: Call) -> IdResponse:
    """Change the name; configuration and deployments are unaffected."""
    body = call.body(RenameEnvironmentRequest)
    environment_id = await environments.rename(
        call.actor, call.path["environmentId"], body.name, call.request_id
    )
    return IdResponse(id=environment_id)


@route(
    "POST",
    "/environments/{environmentId}/lock",
    summary="Lock an environment: readable, but no changes until unlocked",
    tag=TAG,
    permission="projects:write",
    body=ArchiveRequest,
    response=IdResponse,
)
async def lock(call: Call) -> IdResponse:
    """Lock an active environment (a locked or archived one is a conflict)."""
    body = call.body(ArchiveRequest)
    environment_id = await environments.lock(
        call.actor, call.path["environmentId"], body.reason, call.request_id
    )
    return IdResponse(id=environment_id)


@route(
    "POST",
    "/environments/{environmentId}/unlock",
    summary="Unlock a locked environment",
    tag=TAG,
    permission="projects:write",
    response=IdResponse,
)
async def unlock(call: Call) -> IdResponse:
    """Make a locked environment active again."""
    environment_id = await environments.unlock(
        call.actor, call.path["environmentId"], call.request_id
    )
    return IdResponse(id=environment_id)


@route(
    "POST",
    "/environments/{environmentId}/archive",
    summary="Archive an environment (read-only from then on)",
    tag=TAG,
    permission="projects:write",
    body=ArchiveRequest,
    response=IdResponse,
)
async def archive(call: Call) -> IdResponse:
    """Archive an active environment; its history stays readable."""
    body = call.body(ArchiveRequest)
    environment_id = await environments.archive(
        call.actor, call.path["environmentId"], body.reason, call.request_id
    )
    return IdResponse(id=environment_id)


@route(
    "POST",
    "/environments/{environmentId}/clone",
    summary="Clone an active environment and its variables into a new one",
    tag=TAG,
    permission="projects:write",
    body=CloneEnvironmentRequest,
    response=IdResponse,
    status=201,
)
async def clone(call: Call) -> IdResponse:
    """New environment in the same project; secrets are re-encrypted for their new rows."""
    body = call.body(CloneEnvironmentRequest)
    clone_id = await environments.clone(
        call.actor, call.keyring, call.path["environmentId"], body.target_name, call.request_id
    )
    return IdResponse(id=clone_id)


@route(
    "POST",
    "/environments/{environmentId}/variables",
    summary="Set an environment variable (secrets are encrypted at rest)",
    tag=TAG,
    permission="projects:write",
    body=SetVariableRequest,
)
async def set_variable(call: Call) -> None:
    """Insert or replace the variable named by ``key`` + ``exposure``; answers ``null``."""
    await variable_writes.set_variable(call, lambda: _variables_owner(call))


@route(
    "DELETE",
    "/environments/{environmentId}/variables/{key}",
    summary="Remove an environment variable for one exposure",
    tag=TAG,
    permission="projects:write",
    body=DeleteVariableRequest,
)
async def delete_variable(call: Call) -> None:
    """Delete the variable named by path ``key`` + body ``exposure``; answers ``null``."""
    await variable_writes.delete_variable(call, lambda: _variables_owner(call))


async def _variables_owner(call: Call) -> variable_sets.Owner:
    row = await get_environment(call.actor, call.path["environmentId"])
    return environments.owner(row.id)


@route(
    "GET",
    "/environments/{environmentId}/effective-precedence",
    summary="Masked variables after precedence resolution",
    tag=TAG,
    permission="projects:read",
    query=NoQuery,
    response=EffectivePrecedenceResponse,
)
async def effective_precedence(call: Call) -> EffectivePrecedenceResponse:
    """``environments.effective-precedence/v1``; only environment-owned entries exist so far."""
    row = await get_environment(call.actor, call.path["environmentId"])
    owned = [
        variables.masked_entry(v, SCOPE) for v in await variables.list_variables(SCOPE, row.id)
    ]
    return EffectivePrecedenceResponse(
        environment_id=row.id,
        project_id=row.project_id,  # type: ignore[attr-defined]
        owned_entries=owned,
        effective_entries=owned,
        precedence=list(PRECEDENCE),
        generated_at=datetime.now(UTC),
    )


@route(
    "GET",
    "/environments/{environmentId}/diff/{otherEnvironmentId}",
    summary="Compare the variables of two environments (values masked)",
    tag=TAG,
    permission="projects:read",
    query=NoQuery,
    response=EnvironmentDiff,
)
async def diff(call: Call) -> EnvironmentDiff:
    """Entries that differ from left (``environmentId``) to right (``otherEnvironmentId``)."""
    left = await get_environment(call.actor, call.path["environmentId"])
    right = await get_environment(call.actor, call.path["otherEnvironmentId"])
    changes = variables.compare(
        call.keyring,
        await variables.list_variables(SCOPE, left.id),
        await variables.list_variables(SCOPE, right.id),
    )
    return EnvironmentDiff(
        [
            EnvironmentDiffEntry(
                key=c.key,
                exposure=c.exposure,
                left=variables.masked_entry(c.left, SCOPE) if c.left else None,
                right=variables.masked_entry(c.right, SCOPE) if c.right else None,
                change=c.change,
            )
            for c in changes
        ]
    )
