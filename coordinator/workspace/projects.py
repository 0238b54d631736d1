"""Projects: their rules (slugs, archiving, deletion) and persistence, audited."""

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import archives, audit
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.db.volume_models import StorageVolume
from coordinator.ids import new_id
from coordinator.lookup import get_project
from coordinator.paging import Page, page_after
from shared.errors import Conflict, Forbidden, InvalidRequest

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Blocker:
    """Something that keeps a project from being deleted."""

    kind: str
    related_entity_id: str | None
    related_entity_type: str
    count: int

    def as_json(self) -> dict[str, str | int | None]:
        """The wire form (as in a delete-check answer)."""
        return {
            "kind": self.kind,
            "relatedEntityId": self.related_entity_id,
            "relatedEntityType": self.related_entity_type,
            "count": self.count,
        }


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


async def create(
    actor: Principal, name: str, description: str | None, request_id: str | None
) -> str:
    """Create an active project; its slug is derived from the name and unique. Its id."""
    if actor.project_ids:
        raise Forbidden("a project-scoped token cannot create projects")
    slug = slugify(name)
    project_id = new_id("prj")
    try:
        async with in_transaction():
            _ = await models.Project.create(
                id=project_id,
                organization_id=actor.organization_id,
                name=name,
                slug=slug,
                description=description,
                created_at=datetime.now(UTC),
            )
            await audit.record(
                actor=actor,
                event_type="project.created",
                aggregate_type="project",
                aggregate_id=project_id,
                payload={"name": name, "slug": slug},
                request_id=request_id,
            )
    except IntegrityError as exc:
        raise _duplicate(slug) from exc
    return project_id


async def page(
    actor: Principal, lifecycle_status: str | None, cursor: str | None, limit: int
) -> Page[models.Project]:
    """The projects the caller may see, oldest first."""
    rows = _visible(actor)
    if lifecycle_status:
        rows = rows.filter(lifecycle_status=lifecycle_status)
    return await page_after(rows, cursor, limit)


async def count(actor: Principal) -> int:
    """How many projects the caller may see."""
    return await _visible(actor).count()


async def rename(
    actor: Principal, project_id: str, name: str, request_id: str | None
) -> models.Project:
    """Change the name and re-derive the slug; the id is unaffected."""
    row = await get_project(actor, project_id)
    require_active_project(row)
    slug = slugify(name)
    try:
        async with in_transaction():
            await models.Project.filter(id=row.id).update(name=name, slug=slug)
            await audit.record(
                actor=actor,
                event_type="project.renamed",
                aggregate_type="project",
                aggregate_id=row.id,
                payload={"from": row.name, "to": name, "slug": slug},
                request_id=request_id,
            )
    except IntegrityError as exc:
        raise _duplicate(slug) from exc
    return row


async def describe(
    actor: Principal, project_id: str, description: str | None, request_id: str | None
) -> models.Project:
    """Replace the description (``None`` clears it)."""
    row = await get_project(actor, project_id)
    require_active_project(row)
    async with in_transaction():
        await models.Project.filter(id=row.id).update(description=description)
        await audit.record(
            actor=actor,
            event_type="project.description-changed",
            aggregate_type="project",
            aggregate_id=row.id,
            payload={"description": description},
            request_id=request_id,
        )
    return row


async def archive(
    actor: Principal, project_id: str, reason: str | None, request_id: str | None
) -> models.Project:
    """Archive the project; archiving an archived project changes nothing."""
    row = await get_project(actor, project_id)
    if row.lifecycle_status != "archived":
        async with in_transaction():
            await models.Project.filter(id=row.id).update(
                lifecycle_status="archived",
                archived_at=datetime.now(UTC),
                archive_reason=reason,
            )
            await audit.record(
                actor=actor,
                event_type="project.archived",
                aggregate_type="project",
                aggregate_id=row.id,
                payload={"reason": reason},
                request_id=request_id,
            )
    return row


async def restore(actor: Principal, project_id: str, request_id: str | None) -> models.Project:
    """Make the project active again; restoring an active project changes nothing."""
    row = await get_project(actor, project_id)
    if row.lifecycle_status == "archived":
        async with in_transaction():
            await models.Project.filter(id=row.id).update(
                lifecycle_status="active", archived_at=None, archive_reason=None
            )
            await audit.record(
                actor=actor,
                event_type="project.restored",
                aggregate_type="project",
                aggregate_id=row.id,
                request_id=request_id,
            )
    return row


async def blockers(row: models.Project) -> list[Blocker]:
    """Why the project cannot be deleted yet: it is active, or has live (unarchived) resources."""
    found: list[Blocker] = []
    if row.lifecycle_status != "archived":
        found.append(Blocker("active-project", row.id, "project", 1))
    live = (
        await models.Resource.filter(project_id=row.id).exclude(lifecycle_status="archived").count()
    )
    if live:
        found.append(Blocker("resources", None, "resource", live))
    # A volume holds data on a server: it is deleted on purpose (after its runtime cleanup),
    # never as a side effect of deleting its project.
    volumes = await StorageVolume.filter(project_id=row.id).count()
    if volumes:
        found.append(Blocker("storage-volumes", None, "storage-volume", volumes))
    return found


async def delete(
    actor: Principal,
    project_id: str,
    confirmed_id: str,
    data_dir: Path,
    request_id: str | None,
) -> models.Project:
    """Delete an archived project without live resources, after confirmation; its
    environments, archived resources, variables and uploaded archives go with it."""
    row = await get_project(actor, project_id)
    if confirmed_id != row.id:
        raise InvalidRequest("confirmation.projectId must equal the project being deleted")
    found = await blockers(row)
    if found:
        raise Conflict(
            "archive the project and its resources before deleting it",
            details={"blockers": [b.as_json() for b in found]},
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
            actor=actor,
            event_type="project.deleted",
            aggregate_type="project",
            aggregate_id=row.id,
            payload={
                "name": row.name,
                "slug": row.slug,
                "environments": len(environment_ids),
                "resources": len(resource_ids),
            },
            request_id=request_id,
        )
    # Files go after the rows are committed: a failed transaction must not lose them.
    await archives.remove_files(data_dir, archive_ids)
    return row
