"""Full chunks from an engine stream whose reads return a few bytes each: gathered up to the
limit, in order, then ``b""`` at the end (the real engine stream: test_backups_e2e.py)."""

import pytest

from agent.runtime import chunk_fill
from agent.runtime.chunk_fill import read_full


class Trickle:
    """A stream that returns at most ``step`` bytes a read, like an engine's small frames."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.step = step
        self.reads = 0

    async def read(self, limit: int) -> bytes:
        self.reads += 1
        out = self.data[: min(limit, self.step)]
        self.data = self.data[len(out) :]
        return out


async def test_small_reads_are_gathered_into_full_chunks_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No deadline cuts a chunk short on a loaded machine: the sizes below are exact.
    monkeypatch.setattr(chunk_fill, "FILL_SECONDS", 60.0)
    data = bytes(range(256)) * 4
    stream = Trickle(data, step=10)
    chunks = []
    while chunk := await read_full(stream, 300):
        chunks.append(chunk)
    assert b"".join(chunks) == data
    assert [len(c) for c in chunks] == [300, 300, 300, 124]
    assert await read_full(stream, 300) == b""


async def test_a_full_first_read_is_returned_as_it_is() -> None:
    stream = Trickle(b"x" * 50, step=50)
    assert await read_full(stream, 40) == b"x" * 40
    assert stream.reads == 1
