"""The backup target seam: where an artifact's encrypted bytes are kept. Database and volume
backups both write and read through one ``ArtifactStore`` (the coordinator's storage, or an
S3-compatible bucket), so taking, restoring and pruning are the same for every target.

Encryption always happens on the coordinator, before bytes reach any target: the operator's key
never leaves the coordinator, and a bucket only ever holds ciphertext.
"""

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Final, Protocol

from coordinator.backups.artifacts import ArtifactWriter, read_chunks

COORDINATOR_HANDLE: Final = "coordinator://backups/"


class ArtifactSink(Protocol):
    """An artifact being written: only ``finish`` makes it exist; ``discard`` leaves nothing."""

    @property
    def size(self) -> int:
        """Bytes stored so far."""
        ...

    @property
    def plain_bytes(self) -> int:
        """Plaintext bytes taken so far."""
        ...

    async def add(self, plain: bytes) -> None:
        """Encrypt and store one chunk."""
        ...

    async def finish(self) -> str:
        """Close the artifact durably; the SHA-256 of the stored bytes."""
        ...

    async def discard(self) -> None:
        """Remove whatever was written."""
        ...


class ArtifactStore(Protocol):
    """One target: open a writer for an artifact, read one back, delete it, ask if it exists."""

    kind: str

    def handle(self, backup_id: str) -> str:
        """The ``providerArtifactHandle`` of ``backup_id``'s artifact."""
        ...

    async def open_writer(self, backup_id: str) -> ArtifactSink:
        """Start a new artifact."""
        ...

    def read(self, backup_id: str, sha256: str) -> AsyncGenerator[bytes]:
        """The plaintext chunks; ``ArtifactDamaged`` on any damage, after the last chunk at the
        latest (the checksum is compared at the end)."""
        ...

    async def delete(self, backup_id: str) -> None:
        """Remove the artifact (nothing when it is gone already)."""
        ...

    async def exists(self, backup_id: str) -> bool:
        """Whether a finished artifact is stored."""
        ...


class _FileSink:
    def __init__(self, writer: ArtifactWriter) -> None:
        self._writer = writer

    @property
    def size(self) -> int:
        return self._writer.size

    @property
    def plain_bytes(self) -> int:
        return self._writer.plain_bytes

    async def add(self, plain: bytes) -> None:
        await asyncio.to_thread(self._writer.add, plain)

    async def finish(self) -> str:
        return await asyncio.to_thread(self._writer.finish)

    async def discard(self) -> None:
        await asyncio.to_thread(self._writer.discard)


def _discard_opened(opening: asyncio.Future[ArtifactWriter]) -> None:
    """Discard the writer a cancelled ``open_writer`` opened after its caller had gone."""
    if not opening.cancelled() and opening.exception() is None:
        opening.result().discard()


class CoordinatorStore:
    """Artifacts as files in the coordinator's backup directory (``BERTH_BACKUP_DIR``)."""

    kind = "coordinator"

    def __init__(self, root: Path, key: bytes) -> None:
        self.root = root
        self._key = key

    def path(self, backup_id: str) -> Path:
        """Where the artifact of ``backup_id`` lives."""
        return self.root / f"{backup_id}.berthbk"

    def handle(self, backup_id: str) -> str:
        return f"{COORDINATOR_HANDLE}{backup_id}"

    async def open_writer(self, backup_id: str) -> ArtifactSink:
        opening = asyncio.ensure_future(
            asyncio.to_thread(ArtifactWriter, self.path(backup_id), self._key, backup_id)
        )
        try:
            writer = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The thread goes on and creates the file: nobody would hold it (its partial file
            # would be left behind), so it is discarded when it comes.
            opening.add_done_callback(_discard_opened)
            raise
        return _FileSink(writer)

    async def read(self, backup_id: str, sha256: str) -> AsyncGenerator[bytes]:
        chunks = read_chunks(self.path(backup_id), self._key, backup_id, sha256)
        while (plain := await asyncio.to_thread(next, chunks, None)) is not None:
            yield plain

    async def delete(self, backup_id: str) -> None:
        self.path(backup_id).unlink(missing_ok=True)

    async def exists(self, backup_id: str) -> bool:
        return self.path(backup_id).exists()
