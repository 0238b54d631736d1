"""Source archive routes: upload a folder as a gzip tar, and the agent's token-bound download."""

import re
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from tortoise.transactions import in_transaction

from coordinator import archives
from coordinator.api.resource_schemas import SourceArchiveResponse
from coordinator.api.resources import record
from coordinator.api.routing import Call, route
from coordinator.appkeys import SETTINGS_KEY
from coordinator.db import models
from coordinator.lookup import get_resource
from coordinator.workspace.mutability import current_resource
from shared.errors import InvalidRequest, NotFound, Unauthorized

LOCATOR_HEADER: Final = "X-Berth-Locator"
_LOCATOR: Final = re.compile(r"^[\x20-\x7e]{1,500}$")


def _locator(request: web.Request) -> str | None:
    value = request.headers.get(LOCATOR_HEADER)
    if value is None:
        return None
    if not _LOCATOR.fullmatch(value):
        raise InvalidRequest(
            f"{LOCATOR_HEADER} must be 1-500 printable ASCII characters",
            details={"problems": [{"field": LOCATOR_HEADER, "message": "invalid"}]},
        )
    return value


def _local_folder(
    previous: dict[str, Any] | None, archive_id: str, locator: str | None
) -> dict[str, Any]:
    """The resource's new source: keep a previous local-folder's settings, swap the archive."""
    kept = previous if previous and previous.get("kind") == "local-folder" else {}
    metadata = dict(kept.get("metadata") or {})
    metadata["archiveId"] = archive_id
    source: dict[str, Any] = {
        "kind": "local-folder",
        "locator": locator or kept.get("locator") or ".",
        "baseDirectory": kept.get("baseDirectory") or ".",
        "metadata": metadata,
    }
    if kept.get("displayName"):
        source["displayName"] = kept["displayName"]
    return source


@route(
    "POST",
    "/resources/{resourceId}/source/archive",
    summary="Upload the resource's source folder as a gzip tar (raw application/gzip body)",
    tag="resources",
    permission="resources:write",
    response=SourceArchiveResponse,
    status=201,
)
async def upload_archive(call: Call) -> SourceArchiveResponse:
    """Store a validated archive and make it the resource's local-folder source."""
    request = call.request
    locator = _locator(request)
    row = await get_resource(call.actor, call.path["resourceId"])
    # Checked before the body is read so a refused upload does not cost the transfer.
    async with in_transaction():
        _ = await current_resource(row.id)
    data_dir = request.app[SETTINGS_KEY].data_dir
    stored = await archives.store_upload(
        request.content, data_dir, declared_length=request.content_length
    )
    try:
        async with in_transaction():
            current = await current_resource(row.id)
            _ = await models.SourceArchive.create(
                id=stored.id,
                organization_id=call.actor.organization_id,
                resource_id=row.id,
                sha256=stored.sha256,
                size_bytes=stored.size_bytes,
                file_count=stored.file_count,
                locator=locator,
                created_by=call.actor.actor_id,
                created_at=datetime.now(UTC),
            )
            source = _local_folder(current.source, stored.id, locator)
            await models.Resource.filter(id=row.id).update(source=source)
            await record(
                call,
                "source-archive-uploaded",
                row.id,
                archiveId=stored.id,
                sha256=stored.sha256,
                sizeBytes=stored.size_bytes,
                fileCount=stored.file_count,
                locator=locator,
            )
    except BaseException:
        await archives.remove_files(data_dir, [stored.id])
        raise
    return SourceArchiveResponse(
        id=stored.id,
        sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        file_count=stored.file_count,
    )


@route(
    "GET",
    archives.DOWNLOAD_PATH,
    summary="Agent download of a source archive (Bearer archive download token only)",
    tag="agent",
    permission=None,
    raw_response="application/gzip",
    errors=(401,),
)
async def download_archive(call: Call) -> web.StreamResponse:
    """Stream the archive to the holder of a download token bound to it; API tokens are refused."""
    header = call.request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer <archive download token>'")
    archive_id = call.path["archiveId"]
    _ = await archives.redeem_download_token(token.strip(), archive_id)
    archive = await models.SourceArchive.get_or_none(id=archive_id)
    path = archives.archive_path(call.request.app[SETTINGS_KEY].data_dir, archive_id)
    if archive is None or not path.is_file():
        raise NotFound(f"source archive {archive_id!r} not found")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "application/gzip",
            "X-Berth-Archive-Sha256": archive.sha256,
        },
    )
