"""The bounded line buffer between a stream's container readers and its chunk sender.

History (lines older than the moment the stream opened) is lossless: a reader waits for space,
which stops it reading the Docker socket, so the engine holds the rest. Live lines never wait:
when the buffer is full the OLDEST lines are dropped and counted, and the next chunk reports
the count so the client sees a gap instead of a stalled follow.
"""

import asyncio
from collections import deque
from typing import Final, NamedTuple

from shared.messages.logs import LogStreamName

MAX_BUFFER_BYTES: Final = 2 * 1024 * 1024
MAX_BUFFER_LINES: Final = 20_000
# Per-line bookkeeping cost counted on top of the message text.
LINE_OVERHEAD_BYTES: Final = 64


class SourceRef(NamedTuple):
    """The container a buffered line came from."""

    short_id: str
    deployment_id: str | None


Buffered = tuple[SourceRef, int, LogStreamName, int, str, str]
"""A line waiting to be sent: ``(source, index among the source's lines with the same ts_ns,
stream, ts_ns, timestamp, message)`` - the ``RawLine`` fields after the first two."""


class LineBuffer:
    """FIFO of lines bounded by bytes and count; see the module docstring for the policy."""

    def __init__(
        self,
        live_after_ns: int,
        *,
        max_bytes: int = MAX_BUFFER_BYTES,
        max_lines: int = MAX_BUFFER_LINES,
    ) -> None:
        self._live_after_ns = live_after_ns
        self._max_bytes = max_bytes
        self._max_lines = max_lines
        self._items: deque[Buffered] = deque()
        self._bytes = 0
        self._dropped = 0
        self._space = asyncio.Event()
        self._space.set()
        self._data = asyncio.Event()

    @property
    def bytes(self) -> int:
        """Bytes (text plus overhead) currently buffered."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    @property
    def dropped(self) -> int:
        """Lines dropped since the last ``take``."""
        return self._dropped

    def _full(self) -> bool:
        return self._bytes >= self._max_bytes or len(self._items) >= self._max_lines

    async def put(self, lines: list[Buffered]) -> None:
        """Append a reader's batch (waiting first for space if it is all history)."""
        if not lines:
            return
        live = lines[-1][3] >= self._live_after_ns
        if not live:
            while self._full():
                self._space.clear()
                await self._space.wait()
        items = self._items
        items.extend(lines)
        self._bytes += sum([len(item[5]) for item in lines]) + LINE_OVERHEAD_BYTES * len(lines)
        while (
            live
            and len(items) > 1
            and (self._bytes > self._max_bytes or len(items) > self._max_lines)
        ):
            old = items.popleft()
            self._bytes -= len(old[5]) + LINE_OVERHEAD_BYTES
            self._dropped += 1
        self._data.set()

    async def wait_data(self) -> None:
        """Return once something is buffered, a drop waits to be reported, or ``wake``."""
        if not self._items and not self._dropped:
            self._data.clear()
            await self._data.wait()

    def wake(self) -> None:
        """Wake a ``wait_data`` caller (a reader finished; the sender re-checks its state)."""
        self._data.set()

    def take(self, max_bytes: int, max_lines: int) -> tuple[list[Buffered], int]:
        """Remove up to the limits (at least one line when any); return them and the drops."""
        items = self._items
        taken: list[Buffered] = []
        size = 0
        while items and len(taken) < max_lines:
            cost = len(items[0][5]) + LINE_OVERHEAD_BYTES
            if taken and size + cost > max_bytes:
                break
            taken.append(items.popleft())
            size += cost
        self._bytes -= size
        dropped, self._dropped = self._dropped, 0
        if not self._full():
            self._space.set()
        return taken, dropped
