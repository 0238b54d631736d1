"""Project routes: create, list, count, show, rename, describe, archive, restore, delete."""

import re
import unicodedata
from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import archives, audit
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
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.ids import new_id
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound

TAG = "projects"
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """``"My Shop (EU)"`` -> ``"my-shop-eu"``; accents are folded, other symbols become ``-``."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = _NON_ALNUM.sub("-", folded.lower()).strip("-")[:100].rstrip("-")
    if not slug:
        raise InvalidRequest(
            "project name must contain at least one letter or digit",
            details={"problems": [{"field": "name", "message": "no letter or digit"}]},
        )
    return slug


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


async def get_project(
    actor: Principal, project_id: str, db: BaseDBAsyncClient | None = None
) -> models.Project:
    """Load a project the caller may see, or raise ``NotFound`` (hidden looks like missing)."""
    row = await models.Project.get_or_none(
        id=project_id, organization_id=actor.organization_id, using_db=db
    )
    if row is None or not actor.can_see_project(row.id):
        raise NotFound(f"project {project_id!r} not found")
    return row


def require_active_project(row: models.Project) -> None:
    """An archived project is read-only until restored."""
    if row.lifecycle_status == "archived":
        reason = f": {row.archive_reason}" if row.archive_reason else ""
        raise Conflict(f"project is archived{reason}", details={"projectId": row.id})


def _visible(actor: Principal) -> QuerySet[models.Project]:
    rows = models.Project.filter(organization_id=actor.organization_id)
    if actor.project_ids:
        rows = rows.filter(id__in=list(actor.project_ids))
    return rows


def _duplicate(slug: str) -> Conflict:
    return Conflict(f"a project with slug {slug!r} already exists", details={"slug": slug})


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
    actor = call.actor
    if actor.project_ids:
        raise Forbidden("a project-scoped token cannot create projects")
    slug = slugify(body.name)
    project_id = new_id("prj")
    try:
        async with in_transaction():
            _ = await models.Project.create(
                id=project_id,
                organization_id=actor.organization_id,
                name=body.name,
                slug=slug,
                description=body.description,
                created_at=datetime.now(UTC),
            )
            await audit.record(
                actor=actor,
                event_type="project.created",
                aggregate_type="project",
                aggregate_id=project_id,
                payload={"name": body.name, "slug": slug},
                request_id=call.request_id,
            )
    except IntegrityError as exc:
        raise _duplicate(slug) from exc
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
    rows = _visible(call.actor)
    if query.lifecycle_status:
        rows = rows.filter(lifecycle_status=query.lifecycle_status)
    if query.cursor:
        rows = rows.filter(id__gt=query.cursor)
    found = await rows.order_by("id").limit(query.limit + 1)
    page = found[: query.limit]
    more = len(found) > query.limit
    return ProjectList(
        items=[project_item(r) for r in page], next_cursor=page[-1].id if more and page else None
    )


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
    return CountResponse(count=await _visible(call.actor).count())


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
    row = await get_project(call.actor, call.path["projectId"])
    require_active_project(row)
    slug = slugify(body.name)
    try:
        async with in_transaction():
            await models.Project.filter(id=row.id).update(name=body.name, slug=slug)
            await audit.record(
                actor=call.actor,
                event_type="project.renamed",
                aggregate_type="project",
                aggregate_id=row.id,
                payload={"from": row.name, "to": body.name, "slug": slug},
                request_id=call.request_id,
            )
    except IntegrityError as exc:
        raise _duplicate(slug) from exc
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
    row = await get_project(call.actor, call.path["projectId"])
    require_active_project(row)
    async with in_transaction():
        await models.Project.filter(id=row.id).update(description=body.description)
        await audit.record(
            actor=call.actor,
            event_type="project.description-changed",
            aggregate_type="project",
            aggregate_id=row.id,
            payload={"description": body.description},
            request_id=call.request_id,
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
    row = await get_project(call.actor, call.path["projectId"])
    if row.lifecycle_status != "archived":
        async with in_transaction():
            await models.Project.filter(id=row.id).update(
                lifecycle_status="archived",
                archived_at=datetime.now(UTC),
                archive_reason=body.reason,
            )
            await audit.record(
                actor=call.actor,
                event_type="project.archived",
                aggregate_type="project",
                aggregate_id=row.id,
                payload={"reason": body.reason},
                request_id=call.request_id,
            )
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
    row = await get_project(call.actor, call.path["projectId"])
    if row.lifecycle_status == "archived":
        async with in_transaction():
            await models.Project.filter(id=row.id).update(
                lifecycle_status="active", archived_at=None, archive_reason=None
            )
            await audit.record(
                actor=call.actor,
                event_type="project.restored",
                aggregate_type="project",
                aggregate_id=row.id,
                request_id=call.request_id,
            )
    return IdResponse(id=row.id)


async def _blockers(row: models.Project) -> list[Blocker]:
    blockers: list[Blocker] = []
    if row.lifecycle_status != "archived":
        blockers.append(
            Blocker(
                kind="active-project",
                related_entity_id=row.id,
                related_entity_type="project",
                count=1,
            )
        )
    live = (
        await models.Resource.filter(project_id=row.id).exclude(lifecycle_status="archived").count()
    )
    if live:
        blockers.append(
            Blocker(
                kind="resources",
                related_entity_id=None,
                related_entity_type="resource",
                count=live,
            )
        )
    return blockers


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
    blockers = await _blockers(row)
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
    row = await get_project(call.actor, call.path["projectId"])
    if body.confirmation.project_id != row.id:
        raise InvalidRequest("confirmation.projectId must equal the project being deleted")
    blockers = await _blockers(row)
    if blockers:
        raise Conflict(
            "archive the project and its resources before deleting it",
            details={"blockers": [b.model_dump(mode="json") for b in blockers]},
        )
    async with in_transaction():
        environment_ids = await models.Environment.filter(project_id=row.id).values_list(
            "id", flat=True
        )
        resource_ids = await models.Resource.filter(project_id=row.id).values_list("id", flat=True)
        # Variables have no foreign key (their owner is polymorphic), so they go explicitly.
        await models.Variable.filter(
            owner_kind="environment", owner_id__in=[str(i) for i in environment_ids]
        ).delete()
        await models.Variable.filter(
            owner_kind="resource", owner_id__in=[str(i) for i in resource_ids]
        ).delete()
        archive_ids = [
            str(i)
            for i in await models.SourceArchive.filter(
                resource_id__in=[str(i) for i in resource_ids]
            ).values_list("id", flat=True)
        ]
        await models.ArchiveDownloadToken.filter(archive_id__in=archive_ids).delete()
        await models.SourceArchive.filter(id__in=archive_ids).delete()
        await models.Project.filter(id=row.id).delete()
        await audit.record(
            actor=call.actor,
            event_type="project.deleted",
            aggregate_type="project",
            aggregate_id=row.id,
            payload={
                "name": row.name,
                "slug": row.slug,
                "environments": len(environment_ids),
                "resources": len(resource_ids),
            },
            request_id=call.request_id,
        )
    # Files go after the rows are committed: a failed transaction must not lose them.
    await archives.remove_files(call.request.app[SETTINGS_KEY].data_dir, archive_ids)
    return IdResponse(id=row.id)
