"""Source uploads: a stored archive becomes its resource's local-folder source, audited."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import StreamReader
from tortoise.transactions import in_transaction

from coordinator import archives, audit
from coordinator.archives import StoredArchive
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.workspace.mutability import current_resource
from shared.errors import NotFound


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


async def upload(
    actor: Principal,
    resource_id: str,
    content: StreamReader,
    *,
    declared_length: int | None,
    locator: str | None,
    data_dir: Path,
    request_id: str | None,
) -> StoredArchive:
    """Store a validated archive and make it the (visible) resource's local-folder source."""
    # Checked before the body is read so a refused upload does not cost the transfer.
    async with in_transaction():
        _ = await current_resource(resource_id)
    stored = await archives.store_upload(content, data_dir, declared_length=declared_length)
    try:
        async with in_transaction():
            current = await current_resource(resource_id)
            _ = await models.SourceArchive.create(
                id=stored.id,
                organization_id=actor.organization_id,
                resource_id=resource_id,
                sha256=stored.sha256,
                size_bytes=stored.size_bytes,
                file_count=stored.file_count,
                locator=locator,
                created_by=actor.actor_id,
                created_at=datetime.now(UTC),
            )
            source = _local_folder(current.source, stored.id, locator)
            await models.Resource.filter(id=resource_id).update(source=source)
            await audit.record(
                actor=actor,
                event_type="resource.source-archive-uploaded",
                aggregate_type="resource",
                aggregate_id=resource_id,
                payload={
                    "archiveId": stored.id,
                    "sha256": stored.sha256,
                    "sizeBytes": stored.size_bytes,
                    "fileCount": stored.file_count,
                    "locator": locator,
                },
                request_id=request_id,
            )
    except BaseException:
        await archives.remove_files(data_dir, [stored.id])
        raise
    return stored


async def downloadable(data_dir: Path, archive_id: str) -> tuple[Path, str]:
    """The stored archive's file and SHA-256 (the caller redeemed a download token for it)."""
    archive = await models.SourceArchive.get_or_none(id=archive_id)
    path = archives.archive_path(data_dir, archive_id)
    if archive is None or not path.is_file():
        raise NotFound(f"source archive {archive_id!r} not found")
    return path, archive.sha256
