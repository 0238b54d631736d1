"""Source archives: receive and validate uploaded gzip tars, store them, mint download tokens.

An upload is streamed into a temporary file next to its final place (same filesystem, so the
final ``os.replace`` is atomic), hashed and size-capped while it arrives, then checked member by
member as the headers stream by (``tar_scan`` walks them, ``archive_check`` holds the rules):
nothing absolute, nothing written through or escaping via a symlink, no device files.
Only a valid archive is renamed to ``DATA_DIR/archives/<id>.tar.gz``; anything else is deleted.
"""

import asyncio
import gzip
import hashlib
import hmac
import os
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from aiohttp import StreamReader

from coordinator.archive_check import ArchiveCheck
from coordinator.auth import hash_token, mint_token
from coordinator.db import models
from coordinator.ids import new_id
from coordinator.tar_scan import NOT_A_GZIP_TAR, Readable, walk
from shared.errors import InvalidRequest, NotFound, PayloadTooLarge, Unauthorized

# The app-wide client_max_size (1 MiB) only limits buffered reads; uploads are streamed, so
# this cap is enforced here, while the bytes arrive.
MAX_ARCHIVE_BYTES: Final = 200 * 1024 * 1024
_CHUNK: Final = 64 * 1024

DOWNLOAD_TOKEN_PREFIX: Final = "berth_dt_"  # noqa: S105 (a prefix, not a secret)
DOWNLOAD_TOKEN_TTL: Final = timedelta(minutes=30)
DOWNLOAD_PATH: Final = "/agent/v1/archives/{archiveId}"


@dataclass(frozen=True)
class StoredArchive:
    """A validated archive now at its final path."""

    id: str
    path: Path
    sha256: str
    size_bytes: int
    file_count: int


def archive_dir(data_dir: Path) -> Path:
    """Where archives live: ``DATA_DIR/archives``."""
    return data_dir / "archives"


def archive_path(data_dir: Path, archive_id: str) -> Path:
    """The file of one archive."""
    return archive_dir(data_dir) / f"{archive_id}.tar.gz"


def download_path(archive_id: str) -> str:
    """The path (on the coordinator's origin) an agent downloads an archive from."""
    return DOWNLOAD_PATH.format(archiveId=archive_id)


def inspect_stream(tar: Readable) -> int:
    """Validate the members of an uncompressed tar stream; return its number of regular files."""
    check = ArchiveCheck()
    for entry in walk(tar):
        check.add(entry)
    return check.finish()


def inspect_archive(path: Path) -> int:
    """Validate a gzip tar; return its number of regular files. Raises ``InvalidRequest``.

    Blocking (decompresses up to the end-of-archive marker): call through ``asyncio.to_thread``.
    Memory stays bounded whatever the archive holds: headers are walked block by block and
    every limit (entry count, name length, extension header size, declared sizes) is checked
    before the bytes it limits are read.
    """
    with path.open("rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            raise InvalidRequest(NOT_A_GZIP_TAR)
        raw.seek(0)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as tar:
                return inspect_stream(tar)
        except (EOFError, OSError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise InvalidRequest(NOT_A_GZIP_TAR) from exc


async def _receive(content: StreamReader, destination: Path, limit: int) -> tuple[str, int]:
    """Stream the body into ``destination``; return (sha256, size). Raises past ``limit``."""
    digest = hashlib.sha256()
    size = 0
    # Opened without following a symlink someone might have planted at the temporary name.
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        async for chunk in content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"archive exceeds the {limit // (1024 * 1024)} MiB limit")
            digest.update(chunk)
            await asyncio.to_thread(out.write, chunk)
    return digest.hexdigest(), size


async def store_upload(
    content: StreamReader,
    data_dir: Path,
    *,
    declared_length: int | None,
    limit: int | None = None,
) -> StoredArchive:
    """Receive, validate and store an upload; on any failure nothing is left on disk.

    ``limit`` defaults to ``MAX_ARCHIVE_BYTES`` as it is at call time.
    """
    limit = MAX_ARCHIVE_BYTES if limit is None else limit
    if declared_length is not None and declared_length > limit:
        raise PayloadTooLarge(f"archive exceeds the {limit // (1024 * 1024)} MiB limit")
    directory = archive_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    archive_id = new_id("arc")
    partial = directory / f".upload-{secrets.token_hex(8)}.part"
    try:
        sha256, size = await _receive(content, partial, limit)
        if size == 0:
            raise InvalidRequest(NOT_A_GZIP_TAR)
        file_count = await asyncio.to_thread(inspect_archive, partial)
        final = archive_path(data_dir, archive_id)
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return StoredArchive(archive_id, final, sha256, size, file_count)


async def remove_files(data_dir: Path, archive_ids: list[str]) -> None:
    """Delete archive files (after their rows are gone); a missing file is fine."""
    for archive_id in archive_ids:
        await asyncio.to_thread(archive_path(data_dir, archive_id).unlink, missing_ok=True)


async def mint_download_token(archive_id: str, server_id: str, deployment_id: str) -> str:
    """A ``berth_dt_...`` token letting one server fetch one archive for 30 minutes.

    Only its SHA-256 is stored; the plaintext goes into the deploy plan and nowhere else.
    """
    if not await models.SourceArchive.exists(id=archive_id):
        raise NotFound(f"source archive {archive_id!r} not found")
    token = mint_token(DOWNLOAD_TOKEN_PREFIX)
    now = datetime.now(UTC)
    _ = await models.ArchiveDownloadToken.create(
        id=new_id("adt"),
        archive_id=archive_id,
        server_id=server_id,
        deployment_id=deployment_id,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + DOWNLOAD_TOKEN_TTL,
    )
    return token


async def redeem_download_token(token: str, archive_id: str) -> models.ArchiveDownloadToken:
    """The token's row if it is valid for ``archive_id`` now; else ``Unauthorized``."""
    if not token.startswith(DOWNLOAD_TOKEN_PREFIX):
        raise Unauthorized("an archive download token is required")
    digest = hash_token(token)
    row = await models.ArchiveDownloadToken.get_or_none(token_hash=digest)
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise Unauthorized("download token is not valid")
    if row.archive_id != archive_id:
        raise Unauthorized("download token is not valid for this archive")
    now = datetime.now(UTC)
    if row.expires_at <= now:
        raise Unauthorized("download token has expired")
    await models.ArchiveDownloadToken.filter(id=row.id).update(last_used_at=now)
    return row


__all__ = [
    "DOWNLOAD_PATH",
    "DOWNLOAD_TOKEN_PREFIX",
    "DOWNLOAD_TOKEN_TTL",
    "MAX_ARCHIVE_BYTES",
    "StoredArchive",
    "archive_path",
    "download_path",
    "inspect_archive",
    "inspect_stream",
    "mint_download_token",
    "redeem_download_token",
    "remove_files",
    "store_upload",
]
