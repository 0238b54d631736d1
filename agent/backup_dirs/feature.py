"""The server-directory backup target on the agent: keep the coordinator's encrypted artifacts
in an allowed local directory, one chunk per request. A write in flight when its link goes (or
the daemon stops) is removed: only a finished, renamed file is an artifact."""

import asyncio
import base64
import binascii
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
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

# Read transfers at their end that still answer ``eof`` to the reads a window had in flight.
_ENDED_READS = 64


@dataclass(eq=False)
class _Transfer:
    link: LinkContext
    file: ArtifactFile
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The ``seq`` the next windowed write or read must carry.
    next_seq: int = 0


@dataclass
class _Answer:
    data: bytes = b""
    eof: bool = False
    exists: bool = False
    size: int = 0


class BackupDirFeature:
    """Serves ``backup_dir_*`` requests under ``roots`` (none: every request is refused)."""

    def __init__(self, roots: tuple[str, ...]) -> None:
        self.roots = roots
        self._transfers: dict[str, _Transfer] = {}
        self._requests: set[asyncio.Task[None]] = set()
        self._ended_reads: OrderedDict[str, LinkContext] = OrderedDict()

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
            for task in list(self._requests):
                task.cancel()
            for transfer_id in list(self._transfers):
                await self._end(transfer_id)

    async def attached(self, link: LinkContext) -> None:
        """Nothing to send on a new link."""

    def detached(self, link: LinkContext) -> None:
        """Transfers of the old link end (a partial file is removed)."""
        for transfer_id, transfer in list(self._transfers.items()):
            if transfer.link is link:
                self._spawn(self._end(transfer_id))
        for transfer_id, ended in list(self._ended_reads.items()):
            if ended is link:
                del self._ended_reads[transfer_id]

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """Nothing of this feature waits on an error frame."""
        return False

    def receive(self, message: Any, link: LinkContext) -> None:
        """Answer in a task of its own."""
        self._spawn(self._answer(message, link))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _answer(self, message: Any, link: LinkContext) -> None:
        try:
            got = await self._handle(message, link)
            reply = BackupDirReply(
                id=UNSTAMPED,
                re=message.id,
                status="ok",
                data=base64.b64encode(got.data).decode("ascii"),
                eof=got.eof,
                exists=got.exists,
                size=got.size,
                allowed_roots=list(self.roots),
            )
        except (PlatformError, OSError, binascii.Error) as exc:
            logger.warning("%s failed: %s", message.type, exc)
            if transfer_id := getattr(message, "transfer_id", None):
                await self._end(transfer_id)
            reply = BackupDirReply(
                id=UNSTAMPED,
                re=message.id,
                status="failed",
                message=str(exc)[:2000],
                allowed_roots=list(self.roots),
            )
        try:
            await link.send(reply)
        except Exception as exc:  # the link closed under the reply; detached() ends the transfer
            logger.debug("could not answer %s: %s", message.id, exc)

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
        transfer = self._transfers.get(message.transfer_id)
        if self._past_end(message, link, transfer):
            return _Answer(eof=True)
        if transfer is None or transfer.link is not link:
            raise PlatformError(f"no transfer {message.transfer_id!r} is open on this link")
        async with transfer.lock:
            current = self._transfers.get(message.transfer_id)
            if self._past_end(message, link, current):
                return _Answer(eof=True)
            if current is not transfer:
                # Ended (failed or aborted) while this request waited its turn.
                raise PlatformError(f"transfer {message.transfer_id!r} ended")
            _in_order(transfer, message)
            return await self._step(message, transfer)

    def _past_end(self, message: Any, link: LinkContext, transfer: _Transfer | None) -> bool:
        """A windowed read sent before its file's end was seen (answered ``eof`` again)."""
        return (
            transfer is None
            and isinstance(message, BackupDirRead)
            and message.seq is not None
            and self._ended_reads.get(message.transfer_id) is link
        )

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
                if not data:
                    # Noted before the transfer ends: closing the file awaits, and a windowed
                    # read arriving meanwhile must find the end, not a missing transfer.
                    if message.seq is not None:
                        self._ended_reads[message.transfer_id] = transfer.link
                        while len(self._ended_reads) > _ENDED_READS:
                            self._ended_reads.popitem(last=False)
                    await self._end(message.transfer_id)
                return _Answer(data=data, eof=not data)
            case BackupDirAbort():
                await self._end(message.transfer_id)
            case _:
                raise PlatformError(f"{message.type} does not fit transfer {message.transfer_id!r}")
        return _Answer()

    async def _end(self, transfer_id: str) -> None:
        transfer = self._transfers.pop(transfer_id, None)
        if transfer is not None:
            await asyncio.to_thread(transfer.file.close)


def _in_order(transfer: _Transfer, message: Any) -> None:
    """Refuse a windowed write or read whose ``seq`` is not the next one (never reorder)."""
    if not isinstance(message, BackupDirWrite | BackupDirRead) or message.seq is None:
        return
    if message.seq != transfer.next_seq:
        raise PlatformError(
            f"{message.type} {message.seq} arrived out of order (expected {transfer.next_seq})"
        )
    transfer.next_seq += 1
