"""The server-directory backup target: artifacts encrypted on the coordinator, streamed to a
directory on one server through its agent, one chunk per request (the replies are the flow
control: at most a window of chunks is in flight, coordinator/backups/window.py, so memory
stays bounded on both sides; one at a time with agents before ``backup-dirs.window.v1``).

The agent writes ``<backupId>.berthbk.partial`` and renames it only when ``finish`` arrives, so
a backup cut short never leaves a file that looks complete. It writes only under the
directories its local configuration allows; a refusal comes back as the backup's reason.
"""

import base64
import contextlib
import secrets
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, Final

from coordinator.backups.artifacts import Opener, Sealer
from coordinator.backups.targets import ArtifactSink
from coordinator.backups.window import InFlight, Request, in_order, window_of
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from shared.errors import PlatformError, RuntimeFailed
from shared.messages import MAX_CHUNK_BYTES, CoordinatorMessage
from shared.messages.backup_dirs import (
    BACKUP_DIRS_WINDOW_CAPABILITY,
    BackupDirAbort,
    BackupDirDelete,
    BackupDirFinish,
    BackupDirOpen,
    BackupDirRead,
    BackupDirReply,
    BackupDirStat,
    BackupDirWrite,
)

CHUNK_TIMEOUT_SECONDS: Final = 120.0
_ARTIFACT_SUFFIX: Final = ".berthbk"


class DirectoryFailed(RuntimeFailed):
    """The server's agent refused or failed a directory request (``runtime_failed``)."""


async def ask(session: AgentSession, build: Callable[[int], CoordinatorMessage]) -> BackupDirReply:
    """Send one ``backup_dir_*`` request; the ``ok`` reply, else ``DirectoryFailed``."""
    reply = await session.request(build, CHUNK_TIMEOUT_SECONDS)
    if not isinstance(reply, BackupDirReply):
        raise DirectoryFailed(f"the agent answered {reply.type!r}")
    if reply.status != "ok":
        raise DirectoryFailed(
            f"the server's agent refused: {reply.message}",
            details={"allowedRoots": reply.allowed_roots},
        )
    return reply


def _encode(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(data).decode("ascii")


async def _abort(session: AgentSession, transfer_id: str) -> None:
    # The link is gone or the transfer ended already: either way the agent removed it.
    with contextlib.suppress(PlatformError):
        await ask(session, lambda mid: BackupDirAbort(id=mid, transfer_id=transfer_id))


def _write(transfer_id: str, data: str) -> Request:
    def request(seq: int | None) -> Callable[[int], CoordinatorMessage]:
        return lambda mid: BackupDirWrite(id=mid, transfer_id=transfer_id, data=data, seq=seq)

    return request


def _flight(session: AgentSession) -> InFlight[BackupDirReply]:
    window = window_of(session, BACKUP_DIRS_WINDOW_CAPABILITY)
    return InFlight(lambda build: ask(session, build), window)


class _DirectorySink:
    def __init__(self, session: AgentSession, transfer_id: str, sealer: Sealer) -> None:
        self._session = session
        self._transfer_id = transfer_id
        self._sealer = sealer
        self._buffer = bytearray(sealer.head())
        self._flight = _flight(session)

    @property
    def size(self) -> int:
        return self._sealer.size

    @property
    def plain_bytes(self) -> int:
        return self._sealer.plain_bytes

    async def _flush(self, everything: bool) -> None:
        # Whole chunks only until the end, so every frame but the last is full.
        while len(self._buffer) >= MAX_CHUNK_BYTES or (everything and self._buffer):
            data = _encode(self._buffer[:MAX_CHUNK_BYTES])
            del self._buffer[:MAX_CHUNK_BYTES]
            if self._flight.full:
                await self._flight.oldest()
            self._flight.send(_write(self._transfer_id, data))

    async def add(self, plain: bytes) -> None:
        if plain:
            self._buffer += self._sealer.record(plain)
        await self._flush(everything=False)

    async def finish(self) -> str:
        self._buffer += self._sealer.record(b"", last=True)
        await self._flush(everything=True)
        await self._flight.drain()
        await ask(self._session, lambda mid: BackupDirFinish(id=mid, transfer_id=self._transfer_id))
        return self._sealer.sha256()

    async def discard(self) -> None:
        self._buffer.clear()
        await self._flight.settle(cancel=False)
        await _abort(self._session, self._transfer_id)


class ServerDirectoryStore:
    """Artifacts as files ``<path>/<backupId>.berthbk`` on server ``server_id``."""

    kind = "server-directory"

    def __init__(self, registry: Registry, server_id: str, path: str, key: bytes) -> None:
        self.registry = registry
        self.server_id = server_id
        self.path = path
        self._key = key

    def _session(self) -> AgentSession:
        # ``unavailable`` (503) naming the server when its agent is not connected.
        return self.registry.require(self.server_id)

    @staticmethod
    def file_name(backup_id: str) -> str:
        """The artifact's file name in the directory."""
        return f"{backup_id}{_ARTIFACT_SUFFIX}"

    def handle(self, backup_id: str) -> str:
        return f"server-directory://{self.server_id}{self.path}/{self.file_name(backup_id)}"

    def _open(self, backup_id: str, mode: Any) -> tuple[str, Callable[[int], BackupDirOpen]]:
        transfer_id = f"bdt_{secrets.token_hex(12)}"

        def build(mid: int) -> BackupDirOpen:
            return BackupDirOpen(
                id=mid,
                transfer_id=transfer_id,
                path=self.path,
                file_name=self.file_name(backup_id),
                mode=mode,
            )

        return transfer_id, build

    async def open_writer(self, backup_id: str) -> ArtifactSink:
        session = self._session()
        transfer_id, opening = self._open(backup_id, "write")
        await ask(session, opening)
        return _DirectorySink(session, transfer_id, Sealer(self._key, backup_id))

    async def read(self, backup_id: str, sha256: str) -> AsyncGenerator[bytes]:
        session = self._session()
        opener = Opener(self._key, backup_id, sha256)
        transfer_id, opening = self._open(backup_id, "read")
        await ask(session, opening)
        ended = False

        def read(seq: int | None) -> Callable[[int], CoordinatorMessage]:
            return lambda mid: BackupDirRead(id=mid, transfer_id=transfer_id, seq=seq)

        replies = in_order(_flight(session), read, lambda reply: reply.eof)
        try:
            async with aclosing(replies):
                async for reply in replies:
                    if reply.eof:
                        ended = True
                        break
                    for plain in opener.feed(base64.b64decode(reply.data)):
                        yield plain
        finally:
            if not ended:  # closed early (the consumer failed): release the agent's file
                await _abort(session, transfer_id)
        opener.end()

    async def delete(self, backup_id: str) -> None:
        name = self.file_name(backup_id)
        await ask(
            self._session(),
            lambda mid: BackupDirDelete(id=mid, path=self.path, file_name=name),
        )

    async def exists(self, backup_id: str) -> bool:
        name = self.file_name(backup_id)
        reply = await ask(
            self._session(),
            lambda mid: BackupDirStat(id=mid, path=self.path, file_name=name),
        )
        return reply.exists
