"""The backups feature: stream a database dump to the coordinator and a dump back into the
database, one chunk per request. A PostgreSQL or MariaDB restore goes straight into the
restore command's stdin (agent/runtime/restore_stream.py); a Redis one is uploaded as a file
first. Everything in flight ends when its link goes: the coordinator marks the backup or
restore failed, and nothing half-written stays in the container. The one exception is a
volume restore whose last byte arrived: its replace is a commitment that runs to its end
(agent/volume_replacer.py), redone on the next start if the daemon stopped under it."""

import asyncio
import base64
import binascii
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.features import AgentFeature, LinkContext
from agent.runtime import ContainerRuntime, EngineError
from agent.runtime.backup_ops import BackupOps, DumpStream
from agent.runtime.chunk_fill import read_full
from agent.runtime.restore_stream import STREAMED_KINDS, StreamedRestore
from agent.runtime.tar_census import CensusFailed, TarCensus
from agent.runtime.volume_archive import ArchiveStream, VolumeArchiveOps, VolumeHelper
from agent.settings import AgentSettings
from agent.transfers import Transfer, TransferFeature
from agent.volume_intents import ReplaceIntents
from agent.volume_replacer import VolumeReplacer
from shared.errors import PlatformError
from shared.messages import (
    BACKUPS_CAPABILITY,
    BACKUPS_COORDINATOR_TYPES,
    MAX_CHUNK_BYTES,
    REPLACE_UNKNOWN,
    UNSTAMPED,
    VOLUME_BACKUPS_CAPABILITY,
    BackupAbort,
    BackupOpen,
    BackupRead,
    BackupReply,
    BackupTarget,
    RestoreFinish,
    RestoreOpen,
    RestoreWrite,
    VolumeBackupOpen,
    VolumeManifest,
    VolumeRestoreOpen,
    VolumeRestoreSettle,
    VolumeVerifyOpen,
)
from shared.messages.backups import BACKUP_WINDOW_CAPABILITY

logger = logging.getLogger(__name__)

# Chunks a restore holds between the link and the engine (each at most MAX_CHUNK_BYTES).
_RESTORE_QUEUE = 4
_OPENING = BackupOpen | RestoreOpen | VolumeBackupOpen | VolumeRestoreOpen | VolumeVerifyOpen


class _Feed:
    """Chunks from the link handed to a task that writes them into the engine as one stream;
    at most ``_RESTORE_QUEUE`` wait between the two."""

    def __init__(
        self, consume: Callable[[AsyncIterator[bytes]], Coroutine[Any, Any, None]]
    ) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(_RESTORE_QUEUE)
        self._upload: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            consume(self._drain())
        )

    async def put(self, chunk: bytes) -> None:
        """Hand the next chunk on (raises the engine's error if the upload failed)."""
        await self._put(chunk)

    async def finish(self) -> None:
        """End the stream and wait for the upload to take all of it."""
        await self._put(None)
        await self._upload

    async def cancel(self) -> None:
        """Stop the upload where it is."""
        self._upload.cancel()
        with contextlib.suppress(BaseException):
            await self._upload

    async def _put(self, chunk: bytes | None) -> None:
        # The upload may have failed (the engine refused): do not wait on a queue nobody drains.
        put = asyncio.ensure_future(self._queue.put(chunk))
        await asyncio.wait({put, self._upload}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
        if self._upload.done() and (exc := self._upload.exception()) is not None:
            raise exc if isinstance(exc, EngineError) else EngineError(str(exc))

    async def _drain(self) -> AsyncIterator[bytes]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk


@dataclass(eq=False)
class _Restore:
    """A restore being uploaded into the container."""

    target: BackupTarget
    file_name: str
    feed: _Feed


@dataclass(eq=False)
class _VolumeRestore:
    """A volume archive being written into a staging volume."""

    volume_name: str
    staged: VolumeHelper
    feed: _Feed
    # A verification: the staging volume is counted and removed, no volume is replaced.
    verify: bool = False


@dataclass(eq=False)
class _Transfer(Transfer):
    dump: DumpStream | ArchiveStream | None = None
    restore: _Restore | None = None
    streamed: StreamedRestore | None = None
    streamed_target: BackupTarget | None = None
    volume_restore: _VolumeRestore | None = None
    # A volume backup's archive counted as it streams; the manifest for the reply.
    census: TarCensus | None = None
    manifest: VolumeManifest | None = None


@dataclass
class _Answer:
    data: bytes = b""
    eof: bool = False
    # A checked restore's tables and rows.
    counts: tuple[int, int] | None = None


class BackupFeature(TransferFeature[_Transfer, _Answer]):
    """Serves ``backup_*`` and ``restore_*`` requests; one transfer per backup id."""

    window_reads = (BackupRead,)
    window_writes = (RestoreWrite,)
    failures = (EngineError, PlatformError, binascii.Error, CensusFailed)

    def __init__(
        self, ops: BackupOps, volumes: VolumeArchiveOps, state_dir: Path | None = None
    ) -> None:
        super().__init__()
        self._ops = ops
        self._volumes = volumes
        # Volume replaces outlive their link and request; recorded under the state dir.
        intents = ReplaceIntents(state_dir) if state_dir is not None else None
        self._replacer = VolumeReplacer(volumes, intents)

    @property
    def message_types(self) -> frozenset[str]:
        """The backup and restore requests."""
        return BACKUPS_COORDINATOR_TYPES

    @property
    def capabilities(self) -> list[str]:
        """``backups.v1``, ``volume-backups.v1`` and ``backups.window.v1``."""
        return [BACKUPS_CAPABILITY, VOLUME_BACKUPS_CAPABILITY, BACKUP_WINDOW_CAPABILITY]

    async def run(self) -> None:
        """Redo the volume replaces an earlier run left unfinished; end every transfer when the
        daemon stops (a replace in flight is redone on the next start)."""
        try:
            await self._replacer.resume()
            await asyncio.Event().wait()
        finally:
            await self._replacer.close()
            await self._stop()

    def receive(self, message: Any, link: LinkContext) -> None:
        """Answer in a task of its own."""
        if isinstance(message, VolumeRestoreSettle):
            self._spawn(self._settle(message, link))
        else:
            self._spawn(self._answer(message, link))

    async def _serve(self, message: Any, link: LinkContext) -> BackupReply:
        backup_id = str(message.backup_id)
        transfer = self._transfers.get(backup_id)
        if isinstance(message, _OPENING) and transfer is None:
            transfer = self._transfers[backup_id] = _Transfer(link)
        answer = await self._in_turn(backup_id, message, link, _Answer(eof=True))
        return BackupReply(
            id=UNSTAMPED,
            re=message.id,
            backup_id=backup_id,
            status="ok",
            data=base64.b64encode(answer.data).decode("ascii"),
            eof=answer.eof,
            tables=answer.counts[0] if answer.counts else None,
            rows=answer.counts[1] if answer.counts else None,
            manifest=transfer.manifest if transfer is not None else None,
        )

    def _transfer_of(self, message: Any) -> str:
        return str(message.backup_id)

    def _failed(self, message: Any, exc: Exception) -> BackupReply:
        backup_id = str(message.backup_id)
        logger.warning("backup %s: %s failed: %s", backup_id, message.type, exc)
        return BackupReply(
            id=UNSTAMPED,
            re=message.id,
            backup_id=backup_id,
            status="failed",
            message=str(exc)[:2000],
        )

    async def _settle(self, message: VolumeRestoreSettle, link: LinkContext) -> None:
        """Answer how a volume replace ended (asked after the link was lost under it)."""
        outcome = await self._replacer.settled(message.backup_id)
        reply = BackupReply(
            id=UNSTAMPED,
            re=message.id,
            backup_id=message.backup_id,
            status="ok" if outcome == "" else "failed",
            message="" if outcome == "" else outcome or REPLACE_UNKNOWN,
        )
        # If the link closed under the reply, the coordinator asks again.
        await self._send(link, reply, message.id)

    async def _step(self, message: Any, transfer: _Transfer) -> _Answer:
        backup_id = str(message.backup_id)
        match message:
            case BackupOpen():
                transfer.dump = await self._ops.dump(message.target)
            case VolumeBackupOpen():
                transfer.dump = await self._volumes.read(
                    backup_id, message.volume_name, message.stop_containers
                )
                transfer.census = TarCensus()
            case VolumeRestoreOpen() | VolumeVerifyOpen():
                if await self._replacer.busy(backup_id):
                    raise PlatformError(f"volume restore {backup_id!r} is still being replaced")
                staged = await self._volumes.stage(backup_id)
                fill = _Feed(functools.partial(self._volumes.fill, staged))
                verify = isinstance(message, VolumeVerifyOpen)
                name = "" if isinstance(message, VolumeVerifyOpen) else message.volume_name
                transfer.volume_restore = _VolumeRestore(name, staged, fill, verify)
            case RestoreWrite() if transfer.volume_restore is not None:
                await transfer.volume_restore.feed.put(
                    base64.b64decode(message.data, validate=True)
                )
            case RestoreFinish() if transfer.volume_restore is not None:
                volume = transfer.volume_restore
                await volume.feed.finish()
                if volume.verify:
                    transfer.manifest = await self._volumes.census(volume.staged)
                else:
                    # A commitment from here: the replacer owns the staging volume, and neither
                    # a lost link nor an abort (no transfer any more) discards it under the copy.
                    self._transfers.pop(backup_id, None)
                    transfer.volume_restore = None
                    await self._replacer.replace(backup_id, volume.staged, volume.volume_name)
                await self._end(backup_id)
            case BackupRead() if transfer.dump is not None:
                data = await read_full(transfer.dump, MAX_CHUNK_BYTES)
                if transfer.census is not None:
                    await self._count(transfer, data)
                return _Answer(data, not data)  # the base ends the transfer at its end
            case RestoreOpen() if message.target.kind in STREAMED_KINDS:
                transfer.streamed = await StreamedRestore.start(
                    self._ops.engine, message.target, message.size
                )
                transfer.streamed_target = message.target
            case RestoreWrite() if transfer.streamed is not None:
                await transfer.streamed.write(base64.b64decode(message.data, validate=True))
            case RestoreFinish() if transfer.streamed is not None:
                streamed, target = transfer.streamed, transfer.streamed_target
                transfer.streamed = None
                try:
                    await streamed.finish()
                except BaseException:
                    await streamed.cancel()
                    raise
                await self._end(backup_id)
                if message.check and target is not None:
                    return _Answer(counts=await self._ops.counts(target))
            case RestoreOpen():
                file_name = f"berth-restore-{backup_id}.dump"
                upload = functools.partial(
                    self._ops.upload, message.target, file_name, message.size
                )
                transfer.restore = _Restore(message.target, file_name, _Feed(upload))
            case RestoreWrite() if transfer.restore is not None:
                await transfer.restore.feed.put(base64.b64decode(message.data, validate=True))
            case RestoreFinish() if transfer.restore is not None:
                restore = transfer.restore
                await restore.feed.finish()
                transfer.restore = None
                await self._ops.restore(restore.target, restore.file_name)
                await self._end(backup_id)
                if message.check:
                    return _Answer(counts=await self._ops.counts(restore.target))
            case BackupAbort():
                await self._end(backup_id)
            case _:
                raise PlatformError(f"{message.type} does not fit transfer {backup_id!r}")
        return _Answer()

    @staticmethod
    async def _count(transfer: _Transfer, data: bytes) -> None:
        """Count a volume backup's next bytes; at its end, keep the manifest for the reply. A
        census that fails leaves the backup without one (the archive is the engine's)."""
        census = transfer.census
        if census is None:
            return
        if data:
            await census.feed(data)
            return
        transfer.census = None
        try:
            transfer.manifest = await census.finish()
        except CensusFailed as exc:
            logger.warning("volume backup archive not counted: %s", exc)

    async def _end(self, backup_id: str) -> None:
        transfer = self._transfers.pop(backup_id, None)
        if transfer is None:
            return
        if transfer.census is not None:
            await transfer.census.aclose()
        if isinstance(transfer.dump, ArchiveStream):
            await transfer.dump.aclose()
        elif transfer.dump is not None:
            transfer.dump.close()
        volume = transfer.volume_restore
        if volume is not None:
            await volume.feed.cancel()
            await self._volumes.discard(backup_id, volume.staged)
        if transfer.streamed is not None:
            await transfer.streamed.cancel()
        restore = transfer.restore
        if restore is not None:
            await restore.feed.cancel()
            await self._ops.remove_file(restore.target, restore.file_name)


def build_feature(
    runtime: ContainerRuntime, state_dir: Path, settings: AgentSettings
) -> AgentFeature | None:
    """The feature, when the engine is reached on a local socket (else not offered)."""
    engine = getattr(runtime, "engine_client", None)
    client = engine() if callable(engine) else None
    if client is None:
        return None
    volumes = VolumeArchiveOps(client, settings.extra_labels)
    return BackupFeature(BackupOps(client), volumes, state_dir)
