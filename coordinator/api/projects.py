"""Project routes: create, list, count, show, rename, describe, archive, restore, delete."""

from datetime import UTC, datetime

from coordinator.api.routing import Call, route
from coordinator.api.schemas import Blocker, CountResponse, IdResponse, NoQuery
from coordinator.api.workspace_schemas import (
    ArchiveRequest,
    CreateProjectRequest,
    DeleteProjectRequest,
    ListProjectsQuery,
    ProjectDeleteCheckResponse,
    ProjectDescriptionRequest,
    ProjectItem,
    ProjectList,
    RenameProjectRequest,
)
from coordinator.appkeys import SETTINGS_KEY
from coordinator.db import models
from coordinator.lookup import get_project
from coordinator.workspace import projects

TAG = "projects"


def project_item(row: models.Project) -> ProjectItem:
    """Convert a project row into the API item."""
    return ProjectItem(
        id=row.id,
        organization_id=row.organization_id,  # type: ignore[attr-defined]
        name=row.name,
        slug=row.slug,
        description=row.description,
        lifecycle_status="archived" if row.lifecycle_status == "archived" else "active",
        archived_at=row.archived_at,
        archive_reason=row.archive_reason,
        created_at=row.created_at,
    )


@route(
    "POST",
    "/projects",
    summary="Create a project",
    tag=TAG,
    permission="projects:write",
    body=CreateProjectRequest,
    response=IdResponse,
    status=201,
)
async def create(call: Call) -> IdResponse:
    """Create an active project; its slug is derived from the name and unique."""
    body = call.body(CreateProjectRequest)
    project_id = await projects.create(call.actor, body.name, body.description, call.request_id)
    return IdResponse(id=project_id)


@route(
    "GET",
    "/projects",
    summary="List projects",
    tag=TAG,
    permission="projects:read",
    query=ListProjectsQuery,
    response=ProjectList,
)
async def list_projects(call: Call) -> ProjectList:
    """List the projects the caller may see, oldest first, with cursor pagination."""
    query = call.query(ListProjectsQuery)
    page = await projects.page(call.actor, query.lifecycle_status, query.cursor, query.limit)
    return ProjectList(items=[project_item(r) for r in page.items], next_cursor=page.next_cursor)


@route(
    "GET",
    "/projects/count",
    summary="Count projects",
    tag=TAG,
    permission="projects:read",
    query=NoQuery,
    response=CountResponse,
)
async def count(call: Call) -> CountResponse:
    """Count the projects the caller may see."""
    return CountResponse(count=await projects.count(call.actor))


@route(
    "GET",
    "/projects/{projectId}",
    summary="Show a project",
    tag=TAG,
    permission="projects:read",
    query=NoQuery,
    response=ProjectItem,
)
async def show(call: Call) -> ProjectItem:
    """One project."""
    return project_item(await get_project(call.actor, call.path["projectId"]))


@route(
    "POST",
    "/projects/{projectId}/rename",
    summary="Rename a project (the slug follows)",
    tag=TAG,
    permission="projects:write",
    body=RenameProjectRequest,
    response=IdResponse,
)
async def rename(call: Call) -> IdResponse:
    """Change the name and re-derive the slug; the id is unaffected."""
    body = call.body(RenameProjectRequest)
    row = await projects.rename(call.actor, call.path["projectId"], body.name, call.request_id)
    return IdResponse(id=row.id)


@route(
    "POST",
    "/projects/{projectId}/description",
    summary="Set or clear a project's description",
    tag=TAG,
    permission="projects:write",
    body=ProjectDescriptionRequest,
    response=IdResponse,
)
async def describe(call: Call) -> IdResponse:
    """Replace the description (omitted or null clears it)."""
    body = call.body(ProjectDescriptionRequest)
    row = await projects.describe(
        call.actor, call.path["projectId"], body.description, call.request_id
    )
    return IdResponse(id=row.id)


@route(
    "POST",
    "/projects/{projectId}/archive",
    summary="Archive a project (read-only until restored)",
    tag=TAG,
    permission="projects:write",
    body=ArchiveRequest,
    response=IdResponse,
)
async def archive(call: Call) -> IdResponse:
    """Archive the project; archiving an archived project changes nothing."""
    body = call.body(ArchiveRequest)
    row = await projects.archive(call.actor, call.path["projectId"], body.reason, call.request_id)
    return IdResponse(id=row.id)


@route(
    "POST",
    "/projects/{projectId}/restore",
    summary="Restore an archived project",
    tag=TAG,
    permission="projects:write",
    response=IdResponse,
)
async def restore(call: Call) -> IdResponse:
    """Make the project active again; restoring an active project changes nothing."""
    row = await projects.restore(call.actor, call.path["projectId"], call.request_id)
    return IdResponse(id=row.id)


@route(
    "GET",
    "/projects/{projectId}/delete-check",
    summary="Preview whether a project can be deleted",
    tag=TAG,
    permission="projects:read",
    query=NoQuery,
    response=ProjectDeleteCheckResponse,
)
async def delete_check(call: Call) -> ProjectDeleteCheckResponse:
    """Only an archived project without live (unarchived) resources can be deleted."""
    row = await get_project(call.actor, call.path["projectId"])
    blockers = [Blocker.model_validate(b.as_json()) for b in await projects.blockers(row)]
    return ProjectDeleteCheckResponse(
        project_id=row.id,
        lifecycle_status=project_item(row).lifecycle_status,
        eligible=not blockers,
        blockers=blockers,
        checked_at=datetime.now(UTC),
    )


@route(
    "DELETE",
    "/projects/{projectId}",
    summary="Delete an archived project with its environments and variables",
    tag=TAG,
    permission="projects:write",
    body=DeleteProjectRequest,
    response=IdResponse,
)
async def delete(call: Call) -> IdResponse:
    """Delete after confirmation; environments, archived resources and variables go with it."""
    body = call.body(DeleteProjectRequest)
    row = await projects.delete(
        call.actor,
        call.path["projectId"],
        body.confirmation.project_id,
        call.request.app[SETTINGS_KEY].data_dir,
        call.request_id,
    )
    return IdResponse(id=row.id)
