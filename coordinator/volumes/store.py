"""Storage-volume rules and persistence: create, list, rename, delete-check, delete, attach."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from coordinator import audit, lookup
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.db.volume_models import StorageAttachment, StorageVolume
from coordinator.ids import new_id
from coordinator.lookup import get_environment, get_resource, get_server
from coordinator.volumes import paths
from coordinator.workspace.projects import slugify
from shared.errors import Conflict, InvalidRequest, NotFound

KINDS: Final = ("named-volume", "bind-mount")
MOUNT_MODES: Final = ("read-write", "read-only")


@dataclass(frozen=True)
class NewVolume:
    """A create request after parsing."""

    project_id: str
    environment_id: str
    name: str
    kind: str
    source_path: str | None
    server_id: str | None
    description: str | None


@dataclass(frozen=True)
class Attached:
    """One attachment with the resource it mounts into (for the API's summaries)."""

    attachment: StorageAttachment
    resource: models.Resource


def visible(actor: Principal) -> QuerySet[StorageVolume]:
    """Volumes of the caller's organisation within its project/environment scope."""
    rows = StorageVolume.filter(organization_id=actor.organization_id)
    if actor.project_ids:
        rows = rows.filter(project_id__in=list(actor.project_ids))
    if actor.environment_ids:
        rows = rows.filter(environment_id__in=list(actor.environment_ids))
    if actor.server_ids:
        # A volume placed on a server outside the token's servers is out of scope.
        rows = rows.filter(Q(server_id__in=list(actor.server_ids)) | Q(server_id__isnull=True))
    return rows


async def listed(
    actor: Principal, *, project_id: str | None, environment_id: str | None
) -> list[StorageVolume]:
    """Visible volumes matching the filters, oldest first."""
    rows = visible(actor)
    if project_id:
        rows = rows.filter(project_id=project_id)
    if environment_id:
        rows = rows.filter(environment_id=environment_id)
    return await rows.order_by("id")


async def get_volume(actor: Principal, volume_id: str) -> StorageVolume:
    """A volume the caller may see, or ``NotFound``."""
    return await lookup.first_or_404(actor, visible(actor), "storage volume", volume_id)


async def attachments_of(volume_ids: list[str]) -> dict[str, list[Attached]]:
    """Each volume's attachments, oldest first, with their resources."""
    found: dict[str, list[Attached]] = {v: [] for v in volume_ids}
    if not volume_ids:
        return found
    rows = (
        await StorageAttachment.filter(volume_id__in=volume_ids)
        .prefetch_related("resource")
        .order_by("id")
    )
    for row in rows:
        found[row.volume_id].append(Attached(row, row.resource))  # type: ignore[attr-defined]
    return found


async def _record(
    actor: Principal, request_id: str, event: str, volume: StorageVolume, **payload: object
) -> None:
    await audit.record(
        actor=actor,
        event_type=f"storage-volume.{event}",
        aggregate_type="storage-volume",
        aggregate_id=volume.id,
        payload={
            "projectId": volume.project_id,
            "environmentId": volume.environment_id,
            **payload,
        },
        request_id=request_id,
    )


def _duplicate(slug: str) -> Conflict:
    return Conflict(
        f"a storage volume with slug {slug!r} already exists in this environment",
        details={"slug": slug},
    )


async def create(actor: Principal, request_id: str, body: NewVolume) -> str:
    """Validate and store a volume; return its id."""
    if body.kind not in KINDS:
        raise InvalidRequest(f"unknown kind {body.kind!r}", details={"kinds": list(KINDS)})
    source: str | None = None
    if body.kind == "bind-mount":
        if not body.source_path:
            raise InvalidRequest(
                "a bind mount needs sourcePath (a host directory the agent allows)",
                details={"problems": [{"field": "sourcePath", "message": "required"}]},
            )
        source = paths.source_path(body.source_path)
    elif body.source_path is not None:
        raise InvalidRequest(
            "a named volume has no sourcePath: Docker keeps its data",
            details={"problems": [{"field": "sourcePath", "message": "not allowed"}]},
        )
    slug = slugify(body.name)
    environment = await get_environment(actor, body.environment_id)
    if environment.project_id != body.project_id:  # type: ignore[attr-defined]
        raise InvalidRequest(
            "environmentId does not belong to projectId",
            details={"projectId": body.project_id, "environmentId": body.environment_id},
        )
    if environment.lifecycle_status == "archived":
        raise Conflict("the environment is archived", details={"environmentId": environment.id})
    server_id = (await get_server(actor, body.server_id)).id if body.server_id else None
    volume = StorageVolume(
        id=new_id("svol"),
        organization_id=actor.organization_id,
        project_id=body.project_id,
        environment_id=environment.id,
        server_id=server_id,
        name=body.name.strip(),
        slug=slug,
        kind=body.kind,
        source_path=source,
        description=body.description,
        created_at=datetime.now(UTC),
    )
    try:
        async with in_transaction():
            if await StorageVolume.exists(environment_id=environment.id, slug=slug):
                raise _duplicate(slug)
            await volume.save(force_create=True)
            await _record(
                actor,
                request_id,
                "created",
                volume,
                name=volume.name,
                kind=volume.kind,
                sourcePath=source,
                serverId=server_id,
            )
    except IntegrityError as exc:
        raise _duplicate(slug) from exc
    return volume.id


async def rename(actor: Principal, request_id: str, volume_id: str, name: str) -> None:
    """Change the name (and slug); attachments and runtime state stay as they are."""
    volume = await get_volume(actor, volume_id)
    slug = slugify(name)
    try:
        async with in_transaction():
            if (
                await StorageVolume.filter(environment_id=volume.environment_id, slug=slug)
                .exclude(id=volume.id)
                .exists()
            ):
                raise _duplicate(slug)
            previous = volume.name
            await StorageVolume.filter(id=volume.id).update(name=name.strip(), slug=slug)
            await _record(
                actor, request_id, "renamed", volume, name=name.strip(), previous=previous
            )
    except IntegrityError as exc:
        raise _duplicate(slug) from exc


async def delete_blockers(volume: StorageVolume) -> list[Attached]:
    """What keeps a volume from being deleted: its attachments."""
    return (await attachments_of([volume.id]))[volume.id]


async def delete(actor: Principal, request_id: str, volume_id: str) -> None:
    """Delete an unattached volume's record (its data on the server stays until cleanup)."""
    volume = await get_volume(actor, volume_id)
    async with in_transaction():
        attached = await StorageAttachment.filter(volume_id=volume.id).values_list(
            "resource_id", flat=True
        )
        if attached:
            raise Conflict(
                f"storage volume {volume.name!r} is attached to {len(attached)} resource(s): "
                "detach it first",
                details={"reasonCode": "active-attachment", "resourceIds": sorted(attached)},
            )
        await StorageVolume.filter(id=volume.id).delete()
        await _record(actor, request_id, "deleted", volume, name=volume.name, kind=volume.kind)


async def _resource_server(resource_id: str) -> str | None:
    latest = await models.Deployment.filter(resource_id=resource_id).order_by("-id").first()
    return latest.server_id if latest is not None else None


async def attach(
    actor: Principal,
    request_id: str,
    resource_id: str,
    volume_id: str,
    destination: str,
    mount_mode: str,
) -> str:
    """Attach a volume of the resource's environment at ``destination``; the attachment id."""
    if mount_mode not in MOUNT_MODES:
        raise InvalidRequest(f"unknown mountMode {mount_mode!r}", details={"modes": MOUNT_MODES})
    path = paths.destination_path(destination)
    resource = await get_resource(actor, resource_id)
    if resource.lifecycle_status != "active":
        raise Conflict(
            f"resource is {resource.lifecycle_status}", details={"resourceId": resource.id}
        )
    volume = await get_volume(actor, volume_id)
    if volume.environment_id != resource.environment_id:  # type: ignore[attr-defined]
        raise InvalidRequest(
            "the volume belongs to another environment than the resource",
            details={"storageVolumeId": volume.id, "resourceId": resource.id},
        )
    deployed_on = await _resource_server(resource.id)
    if volume.server_id and deployed_on and deployed_on != volume.server_id:
        raise Conflict(
            f"the volume lives on server {volume.server_id}, the resource runs on {deployed_on}",
            details={
                "reasonCode": "storage-volume-server-mismatch",
                "volumeServerId": volume.server_id,
                "resourceServerId": deployed_on,
            },
        )
    attachment = StorageAttachment(
        id=new_id("satt"),
        volume_id=volume.id,
        resource_id=resource.id,
        destination_path=path,
        mount_mode=mount_mode,
        attached_at=datetime.now(UTC),
    )
    taken = Conflict(
        f"the resource already has a mount at {path}",
        details={"destinationPath": path, "resourceId": resource.id},
    )
    try:
        async with in_transaction():
            if await StorageAttachment.exists(resource_id=resource.id, destination_path=path):
                raise taken
            await attachment.save(force_create=True)
            await _record(
                actor,
                request_id,
                "attached",
                volume,
                attachmentId=attachment.id,
                resourceId=resource.id,
                destinationPath=path,
                mountMode=mount_mode,
            )
    except IntegrityError as exc:
        raise taken from exc
    return attachment.id


async def detach(actor: Principal, request_id: str, resource_id: str, attachment_id: str) -> None:
    """Remove an attachment; the volume and its data stay."""
    resource = await get_resource(actor, resource_id)
    row = await StorageAttachment.get_or_none(id=attachment_id, resource_id=resource.id)
    if row is None:
        raise NotFound(f"storage attachment {attachment_id!r} not found")
    volume = await StorageVolume.get(id=row.volume_id)  # type: ignore[attr-defined]
    async with in_transaction():
        await StorageAttachment.filter(id=row.id).delete()
        await _record(
            actor,
            request_id,
            "detached",
            volume,
            attachmentId=row.id,
            resourceId=resource.id,
            destinationPath=row.destination_path,
        )


async def resource_mounts(resource_id: str) -> list[tuple[StorageAttachment, StorageVolume]]:
    """A resource's attachments with their volumes, in attachment order."""
    rows = (
        await StorageAttachment.filter(resource_id=resource_id)
        .prefetch_related("volume")
        .order_by("id")
    )
    return [(row, row.volume) for row in rows]
