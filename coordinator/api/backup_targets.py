"""Backup target routes: ``/backup-targets`` (S3-compatible buckets for database and volume
backups; the coordinator's own storage needs no target)."""

from coordinator.api.backup_target_schemas import (
    BackupTargetItem,
    BackupTargetList,
    CreateBackupTargetRequest,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import IdResponse, NoQuery
from coordinator.backups import target_records
from coordinator.db.backup_target_models import BackupTarget
from coordinator.outbound import guard_for

TAG = "backup-targets"


def _item(row: BackupTarget) -> BackupTargetItem:
    return BackupTargetItem(
        id=row.id,
        name=row.name,
        kind="s3",
        endpoint_url=row.endpoint_url,
        region=row.region,
        bucket=row.bucket,
        prefix=row.prefix,
        access_key_id=row.access_key_id,
        secret_access_key=target_records.MASK,
        created_at=row.created_at,
    )


@route(
    "POST",
    "/backup-targets",
    summary="Add an S3-compatible backup target (endpoint, bucket, prefix, sealed keys)",
    tag=TAG,
    permission="backup-targets:write",
    body=CreateBackupTargetRequest,
    response=IdResponse,
    status=201,
    events=("backup-target.created",),
)
async def create_target(call: Call) -> IdResponse:
    """The secret key is sealed; a private or loopback endpoint needs the operator's
    permission (``--allow-private-webhook-targets``)."""
    body = call.body(CreateBackupTargetRequest)
    row = await target_records.create_s3(
        call.actor,
        call.request_id,
        call.keyring,
        guard_for(call.request.app),
        target_records.S3TargetInput(
            name=body.name,
            endpoint_url=body.endpoint_url,
            region=body.region,
            bucket=body.bucket,
            prefix=body.prefix,
            access_key_id=body.access_key_id,
            secret_access_key=body.secret_access_key,
        ),
    )
    return IdResponse(id=row.id)


@route(
    "GET",
    "/backup-targets",
    summary="List backup targets (secret keys masked)",
    tag=TAG,
    permission="backup-targets:read",
    query=NoQuery,
    response=BackupTargetList,
)
async def list_targets(call: Call) -> BackupTargetList:
    """Oldest first."""
    return BackupTargetList(items=[_item(r) for r in await target_records.listed(call.actor)])


@route(
    "GET",
    "/backup-targets/{backupTargetId}",
    summary="Show a backup target (secret key masked)",
    tag=TAG,
    permission="backup-targets:read",
    query=NoQuery,
    response=BackupTargetItem,
)
async def show_target(call: Call) -> BackupTargetItem:
    """Another organization's target is a 404."""
    return _item(await target_records.get(call.actor, call.path["backupTargetId"]))


@route(
    "DELETE",
    "/backup-targets/{backupTargetId}",
    summary="Delete a backup target no kept backup lives in",
    tag=TAG,
    permission="backup-targets:write",
    response=IdResponse,
    events=("backup-target.deleted",),
)
async def delete_target(call: Call) -> IdResponse:
    """409 while pending or ready backups are kept in it."""
    target_id = call.path["backupTargetId"]
    await target_records.delete(call.actor, call.request_id, target_id)
    return IdResponse(id=target_id)
