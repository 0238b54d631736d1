"""Backup target routes: ``/backup-targets`` (S3-compatible buckets and server directories for
database and volume backups; the coordinator's own storage needs no target)."""

from typing import Any

from coordinator.api.backup_target_schemas import (
    BackupTargetItem,
    BackupTargetList,
    CreateBackupTargetRequest,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import IdResponse, NoQuery
from coordinator.appkeys import REGISTRY_KEY
from coordinator.backups import target_records
from coordinator.db.backup_target_models import BackupTarget
from coordinator.outbound import guard_for
from shared.errors import InvalidRequest

TAG = "backup-targets"


def _item(row: BackupTarget) -> BackupTargetItem:
    return BackupTargetItem(
        id=row.id,
        name=row.name,
        kind="server-directory" if row.kind == "server-directory" else "s3",
        endpoint_url=row.endpoint_url,
        region=row.region,
        bucket=row.bucket,
        prefix=row.prefix,
        access_key_id=row.access_key_id,
        secret_access_key=target_records.MASK,
        created_at=row.created_at,
        server_id=row.server_id,
        path=row.path,
    )


_FIELDS = {
    "s3": {"endpointUrl": "endpoint_url", "bucket": "bucket", "accessKeyId": "access_key_id"}
    | {"secretAccessKey": "secret_access_key"},
    "server-directory": {"serverId": "server_id", "path": "path"},
}


def _given(body: CreateBackupTargetRequest) -> dict[str, Any]:
    """The kind's fields (each required), refusing another kind's: a 400 naming the field."""
    for kind, fields in _FIELDS.items():
        for wire, attribute in fields.items():
            value = getattr(body, attribute)
            if kind == body.kind and value is None:
                raise InvalidRequest(f"{wire} is required for kind {kind}", details={"field": wire})
            if kind != body.kind and value is not None:
                raise InvalidRequest(
                    f"{wire} does not apply to kind {body.kind}", details={"field": wire}
                )
    return {attribute: getattr(body, attribute) for attribute in _FIELDS[body.kind].values()}


@route(
    "POST",
    "/backup-targets",
    summary="Add a backup target: an S3-compatible bucket or a directory on a server",
    tag=TAG,
    permission="backup-targets:write",
    body=CreateBackupTargetRequest,
    response=IdResponse,
    status=201,
    events=("backup-target.created",),
)
async def create_target(call: Call) -> IdResponse:
    """The secret key is sealed; a private or loopback endpoint needs the operator's
    permission (``--allow-private-webhook-targets``). A server directory is checked by the
    server's agent now: outside its ``BERTH_AGENT_BACKUP_DIRS`` is a 403, offline a 503."""
    body = call.body(CreateBackupTargetRequest)
    given = _given(body)
    if body.kind == "server-directory":
        row = await target_records.create_directory(
            call.actor,
            call.request_id,
            call.request.app[REGISTRY_KEY],
            target_records.DirectoryTargetInput(name=body.name, **given),
        )
        return IdResponse(id=row.id)
    row = await target_records.create_s3(
        call.actor,
        call.request_id,
        call.keyring,
        guard_for(call.request.app),
        target_records.S3TargetInput(
            name=body.name, region=body.region, prefix=body.prefix, **given
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
