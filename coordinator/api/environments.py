"""Environment routes: lifecycle (create, rename, lock, archive, clone), variables, diff."""

from collections.abc import Iterable
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit, variables
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
    EnvironmentStatus,
    ListEnvironmentsQuery,
    RenameEnvironmentRequest,
    SetVariableRequest,
)
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.ids import new_id
from coordinator.lookup import get_environment, get_project
from coordinator.paging import page_after
from coordinator.workspace import variable_sets
from coordinator.workspace.mutability import current_environment, require_mutable
from coordinator.workspace.projects import require_active_project
from shared.errors import Conflict, Forbidden

TAG = "environments"
SCOPE = "environment"
PRECEDENCE = ("environment",)  # lowest to highest; project/resource layers come later


def _status(row: models.Environment) -> EnvironmentStatus:
    if row.lifecycle_status == "locked":
        return "locked"
    if row.lifecycle_status == "archived":
        return "archived"
    return "active"


def environment_item(row: models.Environment, owned: Iterable[models.Variable]) -> EnvironmentItem:
    """Convert an environment row and its variables into the API item (secrets masked)."""
    return EnvironmentItem(
        id=row.id,
        project_id=row.project_id,  # type: ignore[attr-defined]
        name=row.name,
        kind=row.kind,
        parent_environment_id=row.parent_environment_id,
        lifecycle_status=_status(row),
        locked_at=row.locked_at,
        lock_reason=row.lock_reason,
        archived_at=row.archived_at,
        archive_reason=row.archive_reason,
        created_at=row.created_at,
        masked_variables=[variables.masked_entry(v, SCOPE) for v in owned],
    )


async def _lock_mutable(environment_id: str) -> None:
    require_mutable(await current_environment(environment_id))


def _owner(environment_id: str) -> variable_sets.Owner:
    return variable_sets.Owner("environment", environment_id, _lock_mutable, "in this environment")


async def _record(call: Call, event: str, environment_id: str, **payload: object) -> None:
    await audit.record(
        actor=call.actor,
        event_type=f"environment.{event}",
        aggregate_type="environment",
        aggregate_id=environment_id,
        payload=payload,
        request_id=call.request_id,
    )


def _visible(actor: Principal) -> QuerySet[models.Environment]:
    rows = models.Environment.filter(project__organization_id=actor.organization_id)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(id__in=list(actor.environment_ids))
    return rows


def _duplicate(name: str) -> Conflict:
    return Conflict(f"an environment named {name!r} already exists in this project")


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
    actor = call.actor
    project = await get_project(actor, body.project_id)
    if actor.environment_ids:
        raise Forbidden("an environment-scoped token cannot create environments")
    environment_id = new_id("env")
    try:
        async with in_transaction():
            current = await models.Project.filter(id=project.id).select_for_update().get()
            require_active_project(current)
            _ = await models.Environment.create(
                id=environment_id,
                project_id=project.id,
                name=body.name,
                kind=body.kind,
                created_at=datetime.now(UTC),
            )
            await _record(call, "created", environment_id, projectId=project.id, name=body.name)
    except IntegrityError as exc:
        raise _duplicate(body.name) from exc
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
    rows = _visible(call.actor)
    if query.project_id:
        rows = rows.filter(project_id=query.project_id)
    if query.lifecycle_status:
        rows = rows.filter(lifecycle_status=query.lifecycle_status)
    page = await page_after(rows, query.cursor, query.limit)
    owned: dict[str, list[models.Variable]] = {r.id: [] for r in page.items}
    if page.items:
        for var in await models.Variable.filter(
            owner_kind=SCOPE, owner_id__in=list(owned)
        ).order_by("key", "exposure"):
            owned[var.owner_id].append(var)
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
    rows = _visible(call.actor)
    if project_id:
        rows = rows.filter(project_id=project_id)
    return CountResponse(count=await rows.count())


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
    row = await get_environment(call.actor, call.path["environmentId"])
    try:
        async with in_transaction():
            require_mutable(await current_environment(row.id))
            await models.Environment.filter(id=row.id).update(name=body.name)
            await _record(call, "renamed", row.id, to=body.name, **{"from": row.name})
    except IntegrityError as exc:
        raise _duplicate(body.name) from exc
    return IdResponse(id=row.id)


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
    row = await get_environment(call.actor, call.path["environmentId"])
    async with in_transaction():
        require_mutable(await current_environment(row.id))
        await models.Environment.filter(id=row.id).update(
            lifecycle_status="locked", locked_at=datetime.now(UTC), lock_reason=body.reason
        )
        await _record(call, "locked", row.id, reason=body.reason)
    return IdResponse(id=row.id)


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
    row = await get_environment(call.actor, call.path["environmentId"])
    async with in_transaction():
        current = await current_environment(row.id)
        if current.lifecycle_status != "locked":
            raise Conflict(
                f"environment is {_status(current)}, not locked", details={"environmentId": row.id}
            )
        await models.Environment.filter(id=row.id).update(
            lifecycle_status="active", locked_at=None, lock_reason=None
        )
        await _record(call, "unlocked", row.id)
    return IdResponse(id=row.id)


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
    row = await get_environment(call.actor, call.path["environmentId"])
    async with in_transaction():
        require_mutable(await current_environment(row.id))
        await models.Environment.filter(id=row.id).update(
            lifecycle_status="archived", archived_at=datetime.now(UTC), archive_reason=body.reason
        )
        await _record(call, "archived", row.id, reason=body.reason)
    return IdResponse(id=row.id)


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
    actor = call.actor
    row = await get_environment(actor, call.path["environmentId"])
    if actor.environment_ids:
        raise Forbidden("an environment-scoped token cannot create environments")
    clone_id = new_id("env")
    try:
        async with in_transaction():
            source = await current_environment(row.id)
            require_mutable(source)
            _ = await models.Environment.create(
                id=clone_id,
                project_id=source.project_id,  # type: ignore[attr-defined]
                name=body.target_name,
                kind=source.kind,
                parent_environment_id=source.id,
                created_at=datetime.now(UTC),
            )
            copied = await variables.copy_variables(
                call.keyring,
                source_kind="environment",
                source_id=source.id,
                target_kind="environment",
                target_id=clone_id,
            )
            await _record(
                call,
                "cloned",
                clone_id,
                sourceEnvironmentId=source.id,
                name=body.target_name,
                variables=copied,
            )
    except IntegrityError as exc:
        raise _duplicate(body.target_name) from exc
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
    body = call.body(SetVariableRequest)
    row = await get_environment(call.actor, call.path["environmentId"])
    await variable_sets.set_variable(
        call.actor,
        _owner(row.id),
        call.keyring,
        key=body.key,
        value=body.value,
        exposure=body.exposure,
        kind=body.kind,
        is_secret=body.is_secret,
        request_id=call.request_id,
    )


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
    body = call.body(DeleteVariableRequest)
    key = call.path["key"]
    variables.require_valid_key(key)
    row = await get_environment(call.actor, call.path["environmentId"])
    await variable_sets.delete_variable(
        call.actor, _owner(row.id), key=key, exposure=body.exposure, request_id=call.request_id
    )


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
