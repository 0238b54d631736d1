"""Full chunks from an engine stream: one ``read`` returns whatever the engine's last frame
held (often a few KiB), so a backup chunk is filled from several reads, up to its limit, the
end of the stream, or a short wait, whichever comes first."""

import asyncio
from typing import Final, Protocol

# How long a chunk may keep filling once it has bytes (a slow dump still answers promptly).
FILL_SECONDS: Final = 0.05


class Readable(Protocol):
    """A stream read in chunks (``b""`` at its end, again on every later read)."""

    async def read(self, limit: int) -> bytes: ...


async def read_full(stream: Readable, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``stream``: ``b""`` only at its end. Never cancels a read (a
    stream's framing state stays whole); a stall after the first bytes waits like one read."""
    first = await stream.read(limit)
    if not first or len(first) >= limit:
        return first
    parts = [first]
    size = len(first)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FILL_SECONDS
    while size < limit and loop.time() < deadline:
        more = await stream.read(limit - size)
        if not more:  # the end: the next read says so again
            break
        parts.append(more)
        size += len(more)
    return b"".join(parts)
