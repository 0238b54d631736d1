"""Storage-volume routes: parse, authorize, call ``coordinator.volumes`` and shape the answer."""

from datetime import UTC, datetime

from coordinator.api.routing import Call, route
from coordinator.api.schemas import CountResponse, IdResponse, NoQuery
from coordinator.api.storage_volume_schemas import (
    AttachStorageRequest,
    BackupRelationship,
    CleanupCandidate,
    CleanupServer,
    CleanupSummary,
    CleanupVolume,
    CleanupWarning,
    CreateStorageVolumeRequest,
    ListStorageVolumesQuery,
    RenameStorageVolumeRequest,
    RuntimeCleanupRequest,
    RuntimeCleanupResponse,
    StorageVolumeDeleteCheck,
    StorageVolumeItem,
    StorageVolumeList,
    StorageVolumeShow,
    VolumeAttachment,
    VolumeDeleteBlocker,
)
from coordinator.appkeys import REGISTRY_KEY
from coordinator.db.volume_models import StorageVolume
from coordinator.volumes import cleanup, paths, store

TAG = "storage-volumes"
READ = "storage-volumes:read"
WRITE = "storage-volumes:write"
_NO_BACKUPS = BackupRelationship(retention_required=False, reason=None)


def volume_item(row: StorageVolume, attached: list[store.Attached]) -> StorageVolumeItem:
    """The API item of a stored volume and its attachments."""
    return StorageVolumeItem(
        id=row.id,
        project_id=row.project_id,
        environment_id=row.environment_id,
        server_id=row.server_id,
        name=row.name,
        slug=row.slug,
        kind=row.kind,  # type: ignore[arg-type]
        source_path=row.source_path
        if row.kind == "bind-mount"
        else paths.docker_volume_name(row.id),
        description=row.description,
        lifecycle_status="active",
        backup_relationship=_NO_BACKUPS,
        attachment_count=len(attached),
        attachments=[
            VolumeAttachment(
                attachment_id=a.attachment.id,
                resource_id=a.resource.id,
                resource_name=a.resource.name,
                resource_slug=a.resource.slug,
                destination_path=a.attachment.destination_path,
                mount_mode=a.attachment.mount_mode,  # type: ignore[arg-type]
                attached_at=a.attachment.attached_at,
            )
            for a in attached
        ],
        created_at=row.created_at,
        deleted_at=None,
    )


@route(
    "POST",
    "/storage-volumes",
    summary="Create a storage volume (Docker named volume or bind mount)",
    tag=TAG,
    permission=WRITE,
    body=CreateStorageVolumeRequest,
    response=IdResponse,
    status=201,
    events=("storage-volume.created",),
)
async def create(call: Call) -> IdResponse:
    """Store the volume; Docker creates it on the server at its first deployment."""
    body = call.body(CreateStorageVolumeRequest)
    new = store.NewVolume(**body.model_dump(by_alias=False))
    return IdResponse(id=await store.create(call.actor, call.request_id, new))


@route(
    "GET",
    "/storage-volumes",
    summary="List storage volumes with their attachments",
    tag=TAG,
    permission=READ,
    query=ListStorageVolumesQuery,
    response=StorageVolumeList,
)
async def list_volumes(call: Call) -> StorageVolumeList:
    """Volumes the caller may see, oldest first."""
    query = call.query(ListStorageVolumesQuery)
    rows = await store.listed(
        call.actor, project_id=query.project_id, environment_id=query.environment_id
    )
    attached = await store.attachments_of([r.id for r in rows])
    return StorageVolumeList(
        items=[volume_item(r, attached[r.id]) for r in rows], generated_at=datetime.now(UTC)
    )


@route(
    "GET",
    "/storage-volumes/count",
    summary="Count storage volumes",
    tag=TAG,
    permission=READ,
    query=ListStorageVolumesQuery,
    response=CountResponse,
)
async def count(call: Call) -> CountResponse:
    """How many volumes the list would show."""
    query = call.query(ListStorageVolumesQuery)
    rows = await store.listed(
        call.actor, project_id=query.project_id, environment_id=query.environment_id
    )
    return CountResponse(count=len(rows))


@route(
    "GET",
    "/storage-volumes/{storageVolumeId}",
    summary="Show a storage volume with its attachments",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=StorageVolumeShow,
)
async def show(call: Call) -> StorageVolumeShow:
    """``storage-volumes.show/v1``."""
    row = await store.get_volume(call.actor, call.path["storageVolumeId"])
    attached = await store.attachments_of([row.id])
    return StorageVolumeShow(
        storage_volume=volume_item(row, attached[row.id]), generated_at=datetime.now(UTC)
    )


@route(
    "POST",
    "/storage-volumes/{storageVolumeId}/rename",
    summary="Rename a storage volume (attachments and data unchanged)",
    tag=TAG,
    permission=WRITE,
    body=RenameStorageVolumeRequest,
    response=IdResponse,
    events=("storage-volume.renamed",),
)
async def rename(call: Call) -> IdResponse:
    """New name and slug; a slug taken in the environment is a 409."""
    volume_id = call.path["storageVolumeId"]
    await store.rename(
        call.actor, call.request_id, volume_id, call.body(RenameStorageVolumeRequest).name
    )
    return IdResponse(id=volume_id)


@route(
    "GET",
    "/storage-volumes/{storageVolumeId}/delete-check",
    summary="Preview whether a storage volume can be deleted",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=StorageVolumeDeleteCheck,
)
async def delete_check(call: Call) -> StorageVolumeDeleteCheck:
    """Blocked while any resource has it attached."""
    row = await store.get_volume(call.actor, call.path["storageVolumeId"])
    blockers = [
        VolumeDeleteBlocker(
            kind="active-attachment",
            message=f"attached to {a.resource.name} at {a.attachment.destination_path}",
            related_entity_type="resource",
            related_entity_id=a.resource.id,
        )
        for a in await store.delete_blockers(row)
    ]
    return StorageVolumeDeleteCheck(
        storage_volume_id=row.id,
        safe_to_delete=not blockers,
        blockers=blockers,
        generated_at=datetime.now(UTC),
    )


@route(
    "DELETE",
    "/storage-volumes/{storageVolumeId}",
    summary="Delete an unattached storage volume (its data stays until runtime cleanup)",
    tag=TAG,
    permission=WRITE,
    query=NoQuery,
    response=IdResponse,
    events=("storage-volume.deleted",),
)
async def delete(call: Call) -> IdResponse:
    """409 ``active-attachment`` while attached."""
    volume_id = call.path["storageVolumeId"]
    await store.delete(call.actor, call.request_id, volume_id)
    return IdResponse(id=volume_id)


@route(
    "POST",
    "/resources/{resourceId}/storage-attachments",
    summary="Attach a storage volume to a resource at a container path",
    tag=TAG,
    permission=WRITE,
    body=AttachStorageRequest,
    response=IdResponse,
    status=201,
    events=("storage-volume.attached",),
)
async def attach(call: Call) -> IdResponse:
    """Mounted from the resource's next deployment on."""
    body = call.body(AttachStorageRequest)
    attachment_id = await store.attach(
        call.actor,
        call.request_id,
        call.path["resourceId"],
        body.storage_volume_id,
        body.destination_path,
        body.mount_mode,
    )
    return IdResponse(id=attachment_id)


@route(
    "DELETE",
    "/resources/{resourceId}/storage-attachments/{attachmentId}",
    summary="Detach storage from a resource (the volume and its data stay)",
    tag=TAG,
    permission=WRITE,
    query=NoQuery,
    response=IdResponse,
    events=("storage-volume.detached",),
)
async def detach(call: Call) -> IdResponse:
    """Unmounted from the resource's next deployment on."""
    attachment_id = call.path["attachmentId"]
    await store.detach(call.actor, call.request_id, call.path["resourceId"], attachment_id)
    return IdResponse(id=attachment_id)


def _cleanup_view(
    outcome: cleanup.CleanupOutcome, before: datetime | None
) -> RuntimeCleanupResponse:
    volume, server = outcome.volume, outcome.server
    blocked = outcome.blocked_reason
    candidates = [
        CleanupCandidate(
            id=c.name,
            kind="named-volume",
            target=c.name,
            updated_at=c.created_at,
            action="blocked" if blocked and c.action == "matched" else c.action,
            blocked_reason=blocked if blocked and c.action == "matched" else c.blocked_reason,
        )
        for c in outcome.candidates
    ]
    actions = [c.action for c in candidates]
    return RuntimeCleanupResponse(
        storage_volume=CleanupVolume(id=volume.id, name=volume.name, kind=volume.kind),  # type: ignore[arg-type]
        server=CleanupServer(
            id=server.id,
            name=server.name,
            host=server.host,
            port=server.port,
            provider_key=server.provider_key,
            target_kind=server.target_kind,
        ),
        before=before,
        dry_run=outcome.dry_run,
        cleaned_at=outcome.cleaned_at,
        summary=CleanupSummary(
            inspected_count=outcome.inspected_count,
            matched_count=actions.count("matched"),
            cleaned_count=actions.count("removed"),
            skipped_count=actions.count("skipped"),
            blocked_count=actions.count("blocked"),
        ),
        candidates=candidates,
        warnings=[
            CleanupWarning(code=w.code, message=w.message, target=w.target)
            for w in outcome.warnings
        ],
    )


@route(
    "POST",
    "/storage-volumes/{storageVolumeId}/runtime-cleanup",
    summary="Dry-run (default) or remove the Docker volumes Berth created for a storage volume",
    tag=TAG,
    permission=WRITE,
    body=RuntimeCleanupRequest,
    response=RuntimeCleanupResponse,
    errors=(503, 504),
    events=("storage-volume.runtime-cleaned",),
)
async def runtime_cleanup(call: Call) -> RuntimeCleanupResponse:
    """``storage-volumes.cleanup-runtime/v1``: blocked while attached; 503 when the agent is
    offline. Removing (``dryRun: false``) is audited."""
    body = call.body(RuntimeCleanupRequest)
    outcome = await cleanup.run(
        call.actor,
        call.request_id,
        call.request.app[REGISTRY_KEY],
        call.path["storageVolumeId"],
        server_id=body.server_id,
        before=body.before,
        dry_run=body.dry_run,
    )
    return _cleanup_view(outcome, body.before)
