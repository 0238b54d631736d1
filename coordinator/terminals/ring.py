"""A bounded byte ring: the most recent terminal output, replayed when a client reattaches."""

from collections import deque
from typing import Final

RING_BYTES: Final = 64 * 1024


class OutputRing:
    """Keeps at most ``limit`` bytes; appending past it drops the oldest bytes."""

    def __init__(self, limit: int = RING_BYTES) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def append(self, data: bytes) -> None:
        """Add ``data`` at the end, trimming from the front to stay within the limit."""
        if self._limit <= 0:
            return
        if len(data) >= self._limit:
            self._chunks.clear()
            self._chunks.append(data[-self._limit :])
            self._size = self._limit
            return
        self._chunks.append(data)
        self._size += len(data)
        while self._size > self._limit:
            head = self._chunks[0]
            excess = self._size - self._limit
            if len(head) <= excess:
                self._chunks.popleft()
                self._size -= len(head)
            else:
                self._chunks[0] = head[excess:]
                self._size -= excess

    def snapshot(self) -> bytes:
        """The retained bytes, oldest first."""
        return b"".join(self._chunks)

    def __len__(self) -> int:
        return self._size
