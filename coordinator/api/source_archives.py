"""Source archive routes: upload a folder as a gzip tar, and the agent's token-bound download."""

import re
from typing import Final

from aiohttp import web

from coordinator import archives, source_uploads
from coordinator.api.resource_schemas import SourceArchiveResponse
from coordinator.api.routing import Call, route
from coordinator.appkeys import SETTINGS_KEY
from coordinator.lookup import get_resource
from shared.errors import InvalidRequest, Unauthorized

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
    stored = await source_uploads.upload(
        call.actor,
        row.id,
        request.content,
        declared_length=request.content_length,
        locator=locator,
        data_dir=request.app[SETTINGS_KEY].data_dir,
        request_id=call.request_id,
    )
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
    path, sha256 = await source_uploads.downloadable(
        call.request.app[SETTINGS_KEY].data_dir, archive_id
    )
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "application/gzip",
            "X-Berth-Archive-Sha256": sha256,
        },
    )
