"""Resources: their rules (slugs, archiving, deletion, profiles, source) and persistence."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import archives, audit
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.ids import new_id
from coordinator.lookup import get_environment, get_project, get_resource
from coordinator.paging import Page, page_after
from coordinator.workspace.mutability import current_resource, require_mutable
from coordinator.workspace.projects import require_active_project, slugify
from shared.errors import Conflict, Forbidden, InvalidRequest

SCOPE: Final = "resource"
# A deployment in one of these states still owns the resource's runtime: no delete meanwhile.
ACTIVE_DEPLOYMENT_STATUSES: Final = (
    "created",
    "planning",
    "planned",
    "running",
    "cancel-requested",
)
# The resource columns that hold a profile; each is replaced whole by one command.
Profile = Literal["runtime_profile", "network_profile", "access_profile", "health_policy"]


def problem(field: str, message: str) -> dict[str, Any]:
    """``details`` of an ``InvalidRequest`` naming one field."""
    return {"problems": [{"field": field, "message": message}]}


def _slug(name: str) -> str:
    if not any(c.isalnum() for c in name):
        raise InvalidRequest(
            "resource name must contain at least one letter or digit",
            details=problem("name", "no letter or digit"),
        )
    return slugify(name)


async def record(
    actor: Principal, event: str, resource_id: str, request_id: str | None, **payload: object
) -> None:
    """Append a ``resource.<event>`` audit event (call inside the mutation's transaction)."""
    await audit.record(
        actor=actor,
        event_type=f"resource.{event}",
        aggregate_type="resource",
        aggregate_id=resource_id,
        payload=payload,
        request_id=request_id,
    )


def _visible(
    actor: Principal, project_id: str | None, environment_id: str | None
) -> QuerySet[models.Resource]:
    rows = models.Resource.filter(project__organization_id=actor.organization_id)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(environment_id__in=list(actor.environment_ids))
    if actor.resource_ids:
        rows = rows.filter(id__in=list(actor.resource_ids))
    if project_id:
        rows = rows.filter(project_id=project_id)
    if environment_id:
        rows = rows.filter(environment_id=environment_id)
    return rows


async def page(
    actor: Principal,
    project_id: str | None,
    environment_id: str | None,
    cursor: str | None,
    limit: int,
) -> Page[models.Resource]:
    """The resources the caller may see (optionally in one project or environment), oldest first."""
    return await page_after(_visible(actor, project_id, environment_id), cursor, limit)


async def count(actor: Principal, project_id: str | None, environment_id: str | None) -> int:
    """How many resources the caller may see (optionally in one project or environment)."""
    return await _visible(actor, project_id, environment_id).count()


async def deployments_of(resource_ids: Iterable[str]) -> dict[str, list[models.Deployment]]:
    """Deployments per resource, newest first."""
    found: dict[str, list[models.Deployment]] = {rid: [] for rid in resource_ids}
    if found:
        for row in await models.Deployment.filter(resource_id__in=list(found)).order_by(
            "-created_at", "-id"
        ):
            found[row.resource_id].append(row)
    return found


@dataclass(frozen=True)
class Placement:
    """A resource's project and environment (what its generated route is derived from)."""

    project: models.Project
    environment: models.Environment


async def placements(rows: list[models.Resource]) -> dict[str, Placement]:
    """Each resource's project and environment (two queries for a page)."""
    projects = {
        p.id: p
        for p in await models.Project.filter(id__in=[r.project_id for r in rows])  # type: ignore[attr-defined]
    }
    environments = {
        e.id: e
        for e in await models.Environment.filter(id__in=[r.environment_id for r in rows])  # type: ignore[attr-defined]
    }
    found: dict[str, Placement] = {}
    for r in rows:
        project = projects.get(r.project_id)  # type: ignore[attr-defined]
        environment = environments.get(r.environment_id)  # type: ignore[attr-defined]
        if project is not None and environment is not None:
            found[r.id] = Placement(project, environment)
    return found


async def create(
    actor: Principal,
    project_id: str,
    environment_id: str,
    name: str,
    kind: str,
    description: str | None,
    request_id: str | None,
) -> str:
    """Create an active resource; its slug comes from the name and is unique per environment."""
    if actor.resource_ids:
        raise Forbidden("a resource-scoped token cannot create resources")
    project = await get_project(actor, project_id)
    environment = await get_environment(actor, environment_id)
    if environment.project_id != project.id:  # type: ignore[attr-defined]
        raise InvalidRequest(
            "the environment does not belong to the project",
            details=problem("environmentId", f"not an environment of project {project.id}"),
        )
    slug = _slug(name)
    resource_id = new_id("res")
    try:
        async with in_transaction():
            current = await models.Project.filter(id=project.id).select_for_update().get()
            require_active_project(current)
            require_mutable(
                await models.Environment.filter(id=environment.id).select_for_update().get()
            )
            _ = await models.Resource.create(
                id=resource_id,
                project_id=project.id,
                environment_id=environment.id,
                name=name,
                slug=slug,
                kind=kind,
                description=description,
                created_at=datetime.now(UTC),
            )
            await record(
                actor,
                "created",
                resource_id,
                request_id,
                projectId=project.id,
                environmentId=environment.id,
                name=name,
                slug=slug,
                kind=kind,
            )
    except IntegrityError as exc:
        raise Conflict(
            f"a resource with slug {slug!r} already exists in this environment",
            details={"slug": slug, "environmentId": environment.id},
        ) from exc
    return resource_id


async def archive(
    actor: Principal, resource_id: str, reason: str | None, request_id: str | None
) -> str:
    """Archive an active resource (archiving twice is a conflict). Its id."""
    row = await get_resource(actor, resource_id)
    async with in_transaction():
        _ = await current_resource(row.id)
        await models.Resource.filter(id=row.id).update(
            lifecycle_status="archived", archived_at=datetime.now(UTC)
        )
        await record(actor, "archived", row.id, request_id, reason=reason)
    return row.id


async def delete(
    actor: Principal,
    resource_id: str,
    confirmed_slug: str,
    data_dir: Path,
    request_id: str | None,
) -> str:
    """Delete after slug confirmation, with its variables and source archives; refused while
    one of its deployments is in flight. Its id."""
    row = await get_resource(actor, resource_id)
    if confirmed_slug != row.slug:
        raise InvalidRequest(
            "confirmation.resourceSlug must equal the slug of the resource being deleted",
            details=problem("confirmation.resourceSlug", "does not match"),
        )
    async with in_transaction():
        _ = await current_resource(row.id, allow_archived=True)
        active = await models.Deployment.filter(
            resource_id=row.id, status__in=list(ACTIVE_DEPLOYMENT_STATUSES)
        ).values_list("id", flat=True)
        if active:
            raise Conflict(
                "the resource has deployments in progress; wait for them or cancel them first",
                details={"deploymentIds": [str(i) for i in active]},
            )
        archive_ids = [
            str(i)
            for i in await models.SourceArchive.filter(resource_id=row.id).values_list(
                "id", flat=True
            )
        ]
        await models.ArchiveDownloadToken.filter(archive_id__in=archive_ids).delete()
        await models.SourceArchive.filter(id__in=archive_ids).delete()
        # Variables have no foreign key (their owner is polymorphic), so they go explicitly.
        removed = await models.Variable.filter(owner_kind=SCOPE, owner_id=row.id).delete()
        await models.Resource.filter(id=row.id).delete()
        await record(
            actor,
            "deleted",
            row.id,
            request_id,
            name=row.name,
            slug=row.slug,
            variables=removed,
            sourceArchives=len(archive_ids),
        )
    # Files go after the rows are committed: a failed transaction must not lose them.
    await archives.remove_files(data_dir, archive_ids)
    return row.id


async def update_profile(
    actor: Principal,
    resource_id: str,
    column: Profile,
    value: dict[str, Any] | None,
    event: str,
    request_id: str | None,
) -> str:
    """Replace one profile column (``None`` restores its defaults), audited as ``event``."""
    row = await get_resource(actor, resource_id)
    async with in_transaction():
        _ = await current_resource(row.id)
        await models.Resource.filter(id=row.id).update(**{column: value})
        await record(actor, event, row.id, request_id, **{column: value})
    return row.id


async def configure_source(
    actor: Principal,
    resource_id: str,
    source: dict[str, Any],
    archive_id: str | None,
    idempotency_key: str | None,
    request_id: str | None,
) -> str:
    """Replace the source; an uploaded folder (``archive_id``) must be an archive of this
    resource. Repeating the command changes nothing."""
    row = await get_resource(actor, resource_id)
    if archive_id is not None and not await models.SourceArchive.exists(
        id=archive_id, resource_id=row.id
    ):
        raise InvalidRequest(
            f"source archive {archive_id!r} does not belong to this resource",
            details=problem("source.metadata.archiveId", "unknown archive"),
        )
    async with in_transaction():
        _ = await current_resource(row.id)
        await models.Resource.filter(id=row.id).update(source=source)
        await record(
            actor,
            "source-configured",
            row.id,
            request_id,
            source=source,
            idempotencyKey=idempotency_key,
        )
    return row.id
