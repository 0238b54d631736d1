"""The server-directory backup target on the agent: keep the coordinator's encrypted artifacts
in an allowed local directory, one chunk per request. A write in flight when its link goes (or
the daemon stops) is removed: only a finished, renamed file is an artifact."""

import asyncio
import base64
import binascii
import logging
from dataclasses import dataclass
from typing import Any

from agent.backup_dirs.files import (
    ArtifactFile,
    artifact_size,
    open_artifact,
    remove_artifact,
    sweep_partials,
)
from agent.backup_dirs.paths import allowed_dir
from agent.features import LinkContext
from agent.transfers import Transfer, TransferFeature
from shared.errors import PlatformError
from shared.messages import MAX_CHUNK_BYTES, UNSTAMPED
from shared.messages.backup_dirs import (
    BACKUP_DIRS_CAPABILITY,
    BACKUP_DIRS_COORDINATOR_TYPES,
    BACKUP_DIRS_WINDOW_CAPABILITY,
    BackupDirAbort,
    BackupDirCheck,
    BackupDirDelete,
    BackupDirFinish,
    BackupDirOpen,
    BackupDirRead,
    BackupDirReply,
    BackupDirStat,
    BackupDirWrite,
)

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Transfer(Transfer):
    file: ArtifactFile


@dataclass
class _Answer:
    data: bytes = b""
    eof: bool = False
    exists: bool = False
    size: int = 0


class BackupDirFeature(TransferFeature[_Transfer, _Answer]):
    """Serves ``backup_dir_*`` requests under ``roots`` (none: every request is refused)."""

    window_reads = (BackupDirRead,)
    window_writes = (BackupDirWrite,)
    failures = (PlatformError, OSError, binascii.Error)

    def __init__(self, roots: tuple[str, ...]) -> None:
        super().__init__()
        self.roots = roots

    @property
    def message_types(self) -> frozenset[str]:
        """The ``backup_dir_*`` requests."""
        return BACKUP_DIRS_COORDINATOR_TYPES

    @property
    def capabilities(self) -> list[str]:
        """``backup-dirs.v1`` and ``backup-dirs.window.v1``."""
        return [BACKUP_DIRS_CAPABILITY, BACKUP_DIRS_WINDOW_CAPABILITY]

    async def run(self) -> None:
        """Remove what a killed agent left half-written; nothing runs between requests; end
        every transfer when the daemon stops."""
        for path in await asyncio.to_thread(sweep_partials, self.roots):
            logger.info("removed an unfinished backup artifact: %s", path)
        try:
            await asyncio.Event().wait()
        finally:
            await self._stop()

    async def _serve(self, message: Any, link: LinkContext) -> BackupDirReply:
        got = await self._handle(message, link)
        return BackupDirReply(
            id=UNSTAMPED,
            re=message.id,
            status="ok",
            data=base64.b64encode(got.data).decode("ascii"),
            eof=got.eof,
            exists=got.exists,
            size=got.size,
            allowed_roots=list(self.roots),
        )

    def _transfer_of(self, message: Any) -> str | None:
        return getattr(message, "transfer_id", None) or None

    def _failed(self, message: Any, exc: Exception) -> BackupDirReply:
        logger.warning("%s failed: %s", message.type, exc)
        return BackupDirReply(
            id=UNSTAMPED,
            re=message.id,
            status="failed",
            message=str(exc)[:2000],
            allowed_roots=list(self.roots),
        )

    async def _handle(self, message: Any, link: LinkContext) -> _Answer:
        match message:
            case BackupDirCheck():
                allowed_dir(self.roots, message.path)
                return _Answer()
            case BackupDirDelete():
                await asyncio.to_thread(
                    remove_artifact, self.roots, message.path, message.file_name
                )
                return _Answer()
            case BackupDirStat():
                size = await asyncio.to_thread(
                    artifact_size, self.roots, message.path, message.file_name
                )
                return _Answer(exists=size is not None, size=size or 0)
            case BackupDirOpen():
                if message.transfer_id in self._transfers:
                    raise PlatformError(f"transfer {message.transfer_id!r} is open already")
                opened = await asyncio.to_thread(
                    open_artifact,
                    self.roots,
                    message.path,
                    message.file_name,
                    message.mode == "write",
                )
                self._transfers[message.transfer_id] = _Transfer(link, opened)
                return _Answer()
        return await self._in_turn(message.transfer_id, message, link, _Answer(eof=True))

    async def _step(self, message: Any, transfer: _Transfer) -> _Answer:
        opened = transfer.file
        match message:
            case BackupDirWrite() if opened.writing:
                data = base64.b64decode(message.data, validate=True)
                await asyncio.to_thread(opened.write, data)
            case BackupDirFinish() if opened.writing:
                await asyncio.to_thread(opened.finish)
                self._transfers.pop(message.transfer_id, None)
            case BackupDirRead() if not opened.writing:
                data = await asyncio.to_thread(opened.read, MAX_CHUNK_BYTES)
                return _Answer(data=data, eof=not data)  # the base ends the transfer at its end
            case BackupDirAbort():
                await self._end(message.transfer_id)
            case _:
                raise PlatformError(f"{message.type} does not fit transfer {message.transfer_id!r}")
        return _Answer()

    async def _end(self, transfer_id: str) -> None:
        transfer = self._transfers.pop(transfer_id, None)
        if transfer is not None:
            await asyncio.to_thread(transfer.file.close)
