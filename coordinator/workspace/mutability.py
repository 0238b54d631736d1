"""Mutation guards: re-read a workspace row inside the caller's transaction and check it may
change now (its project active, its environment neither locked nor archived)."""

from coordinator.db import models
from coordinator.workspace.projects import require_active_project
from shared.errors import Conflict, NotFound


def require_mutable(row: models.Environment) -> None:
    """A locked or archived environment refuses changes to itself and its variables."""
    if row.lifecycle_status == "locked":
        reason = row.lock_reason or "no reason given"
        raise Conflict(f"environment is locked: {reason}", details={"environmentId": row.id})
    if row.lifecycle_status == "archived":
        reason = row.archive_reason or "no reason given"
        raise Conflict(f"environment is archived: {reason}", details={"environmentId": row.id})


async def current_environment(environment_id: str) -> models.Environment:
    """Re-read an environment inside the caller's transaction, locking its row (Postgres)."""
    row = await models.Environment.filter(id=environment_id).select_for_update().first()
    if row is None:
        raise NotFound(f"environment {environment_id!r} not found")
    project = await models.Project.get(id=row.project_id)  # type: ignore[attr-defined]
    require_active_project(project)
    return row


async def current_resource(resource_id: str, *, allow_archived: bool = False) -> models.Resource:
    """Re-read a resource inside the caller's transaction and check it may change.

    The project must be active and the environment neither locked nor archived; an archived
    resource only accepts deletion (``allow_archived``).
    """
    row = await models.Resource.filter(id=resource_id).select_for_update().first()
    if row is None:
        raise NotFound(f"resource {resource_id!r} not found")
    require_active_project(await models.Project.get(id=row.project_id))  # type: ignore[attr-defined]
    require_mutable(await models.Environment.get(id=row.environment_id))  # type: ignore[attr-defined]
    if row.lifecycle_status == "archived" and not allow_archived:
        raise Conflict("resource is archived", details={"resourceId": row.id})
    return row
