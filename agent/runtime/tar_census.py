"""Count what a volume's tar archive holds while it streams past: entries, regular files and
their bytes, and a digest of the entries' types, sizes and paths (a ``VolumeManifest``).

The archive is read by the standard library's ``tarfile`` (headers, checksums, PAX and GNU long
names) in a thread of its own, fed chunk by chunk from the event loop through a bounded queue,
so memory stays bounded whatever the volume's size. The digest is taken in archive order: the
engine writes a directory tree in lexical order, so the same files give the same digest.
"""

import asyncio
import contextlib
import hashlib
import tarfile
import threading
from collections import deque
from typing import Final

from shared.messages import VolumeManifest

# Chunks waiting for the census thread (each at most one link chunk).
_QUEUE: Final = 4
_BLOCK: Final = tarfile.BLOCKSIZE
# Reads of tarfile kept (each at most a record): its last header is among them.
_KEPT_READS: Final = 8


class CensusFailed(Exception):
    """The stream is not a complete tar archive."""


class _Pipe:
    """The census thread's file: ``read`` takes chunks from the loop's queue (``b''`` at end).
    Each chunk is copied once: reads slice it at a moving position."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]):
        self._loop = loop
        self._queue = queue
        self._chunk = b""
        self._at = 0
        self.ended = False
        # Bytes handed to tarfile so far, and its last reads (offset, data) for the end check.
        self.served = 0
        self._kept: deque[tuple[int, bytes]] = deque(maxlen=_KEPT_READS)

    def _next(self) -> bytes | None:
        return asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()

    def read(self, size: int = -1) -> bytes:
        while not self.ended and (size < 0 or len(self._chunk) - self._at < size):
            chunk = self._next()
            if chunk is None:
                self.ended = True
            else:
                self._chunk, self._at = self._chunk[self._at :] + chunk, 0
        if size < 0:
            size = len(self._chunk) - self._at
        data = self._chunk[self._at : self._at + size]
        self._at += len(data)
        if data:
            self._kept.append((self.served, data))
            self.served += len(data)
        return data

    def at(self, offset: int, size: int) -> bytes:
        """``size`` bytes of the stream from ``offset`` (read on when needed; fewer at its end
        or when tarfile's reads of them are no longer kept)."""
        if self.served < offset + size:
            self.read(offset + size - self.served)
        found = b"".join(data for _, data in self._kept)
        start = self._kept[0][0] if self._kept else self.served
        if offset < start:
            return b""
        return found[offset - start : offset - start + size]

    def drain(self) -> None:
        """Take every chunk until the end, so the feeder never waits forever."""
        while not self.ended:
            self._chunk, self._at = b"", 0
            if self._next() is None:
                self.ended = True


def _count(pipe: _Pipe) -> VolumeManifest:
    entries = files = file_bytes = 0
    digest = hashlib.sha256()
    # ``r|``: a forward-only stream, never a seek back.
    with tarfile.open(fileobj=pipe, mode="r|") as archive:  # type: ignore[call-overload]
        for member in archive:
            entries += 1
            size = member.size if member.isreg() else 0
            if member.isreg():
                files += 1
                file_bytes += member.size
            kind = member.type.decode("ascii", "replace")
            line = f"{kind} {size} {member.name} {member.linkname}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
        end = archive.offset
    # tarfile stops quietly at a cut-off archive or a damaged header after the first one: a
    # whole archive ends with two zero blocks right after its last entry.
    marker = pipe.at(end, 2 * _BLOCK)
    pipe.drain()
    if len(marker) < 2 * _BLOCK:
        raise CensusFailed(f"the archive ends early: its entries need {end + 2 * _BLOCK} byte(s)")
    if marker.count(0) != len(marker):
        raise CensusFailed(f"the archive is damaged: no valid entry at byte {end}")
    return VolumeManifest(
        entries=entries, files=files, file_bytes=file_bytes, paths_sha256=digest.hexdigest()
    )


class TarCensus:
    """Feed a tar stream with ``feed``; ``finish`` answers its manifest (or raises
    ``CensusFailed``); ``aclose`` stops it early. Created inside a running loop."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUE)
        self._done: asyncio.Future[VolumeManifest] = self._loop.create_future()
        self._closed = False
        self._pipe = _Pipe(self._loop, self._queue)
        threading.Thread(target=self._run, name="berth-tar-census", daemon=True).start()

    def _run(self) -> None:
        result: VolumeManifest | BaseException
        try:
            result = _count(self._pipe)
        except Exception as exc:  # tarfile's errors, a short archive: the census's answer
            result = exc if isinstance(exc, CensusFailed) else CensusFailed(str(exc))
            with contextlib.suppress(Exception):
                self._pipe.drain()
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            self._loop.call_soon_threadsafe(self._settle, result)

    def _settle(self, result: VolumeManifest | BaseException) -> None:
        if self._done.done():
            return
        if isinstance(result, BaseException):
            self._done.set_exception(result)
        else:
            self._done.set_result(result)

    async def feed(self, data: bytes) -> None:
        """Count ``data``, the archive's next bytes."""
        if data and not self._closed:
            await self._queue.put(data)

    async def aclose(self) -> None:
        """End the stream (what was fed is all there is) and wait for the thread."""
        if not self._closed:
            self._closed = True
            await self._queue.put(None)
        await asyncio.wait({self._done})
        self._done.exception()  # retrieved: a census stopped early fails nobody

    async def finish(self) -> VolumeManifest:
        """The manifest of everything fed; ``CensusFailed`` if it is not a whole archive."""
        await self.aclose()
        return self._done.result()
