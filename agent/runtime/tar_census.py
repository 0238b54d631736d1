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
from typing import Final

from shared.messages import VolumeManifest

# Chunks waiting for the census thread (each at most one link chunk).
_QUEUE: Final = 4
_BLOCK: Final = tarfile.BLOCKSIZE
# Kept of what tarfile read (it reads a record at a time): where its last header was.
_WINDOW: Final = 4 * tarfile.RECORDSIZE


class CensusFailed(Exception):
    """The stream is not a complete tar archive."""


class _Pipe:
    """The census thread's file: ``read`` takes chunks from the loop's queue (``b''`` at end)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]):
        self._loop = loop
        self._queue = queue
        self._buffer = b""
        self.ended = False
        self.total = 0
        # The last bytes handed to tarfile and where they start: the end-of-archive check.
        self._window = b""
        self._window_at = 0

    def _next(self) -> bytes | None:
        return asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()

    def read(self, size: int = -1) -> bytes:
        while not self.ended and (size < 0 or len(self._buffer) < size):
            chunk = self._next()
            if chunk is None:
                self.ended = True
            else:
                self.total += len(chunk)
                self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        self._window += data
        if len(self._window) > _WINDOW:
            cut = len(self._window) - _WINDOW
            self._window, self._window_at = self._window[cut:], self._window_at + cut
        return data

    def at(self, offset: int, size: int) -> bytes:
        """``size`` bytes of the stream from ``offset`` (read on when needed; fewer at its end
        or when they already left the window)."""
        while not self.ended and self._window_at + len(self._window) < offset + size:
            self.read(offset + size - self._window_at - len(self._window))
        if offset < self._window_at:
            return b""
        return self._window[offset - self._window_at : offset - self._window_at + size]

    def drain(self) -> None:
        """Take (and count) every chunk until the end, so the feeder never waits forever."""
        while not self.ended:
            self.read(1 << 20)
            self._buffer = b""


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
