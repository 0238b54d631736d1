"""The transfer features' shared base: the window's in-order check on its own, then the base
under a small in-memory feature (open by id and link, reads answered ``eof`` past their end,
a failure ends its transfer). The real features: test_backup_window.py and
tests/unit/test_backup_dirs_window.py."""

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any

import pytest

from agent.features import LinkContext
from agent.transfers import ENDED_READS, InOrderWindow, Transfer, TransferFeature
from shared.errors import PlatformError
from shared.messages import UNSTAMPED, IdSequence
from shared.messages.backup_dirs import BackupDirReply


def test_a_window_admits_seq_0_1_2_in_turn() -> None:
    window = InOrderWindow()
    for seq in range(3):
        window.admit("backup_read", seq)
    assert window.next_seq == 3


def test_an_unwindowed_request_is_not_counted() -> None:
    window = InOrderWindow()
    window.admit("backup_read", None)
    window.admit("backup_read", 0)
    window.admit("backup_read", None)
    assert window.next_seq == 1


@pytest.mark.parametrize("seq", [1, 5])
def test_a_seq_ahead_of_its_turn_is_refused_and_not_taken(seq: int) -> None:
    window = InOrderWindow()
    with pytest.raises(
        PlatformError, match=f"restore_write {seq} arrived out of order \\(expected 0\\)"
    ):
        window.admit("restore_write", seq)
    assert window.next_seq == 0
    window.admit("restore_write", 0)
    assert window.next_seq == 1


def test_a_repeated_seq_is_refused() -> None:
    window = InOrderWindow()
    window.admit("backup_dir_write", 0)
    window.admit("backup_dir_write", 1)
    with pytest.raises(
        PlatformError, match="backup_dir_write 1 arrived out of order \\(expected 2\\)"
    ):
        window.admit("backup_dir_write", 1)
    assert window.next_seq == 2


@dataclass
class Open:
    id: int
    transfer_id: str
    chunks: list[bytes]
    type: str = "open"


@dataclass
class Read:
    id: int
    transfer_id: str
    seq: int | None = None
    type: str = "read"


@dataclass(eq=False)
class _Chunks(Transfer):
    chunks: list[bytes]
    ended: list[str] = field(default_factory=list)


@dataclass
class _Answer:
    data: bytes = b""
    eof: bool = False


class ChunksFeature(TransferFeature[_Chunks, _Answer]):
    """Reads a transfer's chunks one per request; what it ended, in order."""

    window_reads = (Read,)

    def __init__(self) -> None:
        super().__init__()
        self.ended: list[str] = []

    async def _serve(self, message: Any, link: LinkContext) -> BackupDirReply:
        if isinstance(message, Open):
            self._transfers[message.transfer_id] = _Chunks(link, list(message.chunks))
            answer = _Answer()
        else:
            answer = await self._in_turn(message.transfer_id, message, link, _Answer(eof=True))
        data = base64.b64encode(answer.data).decode("ascii")
        return BackupDirReply(id=UNSTAMPED, re=message.id, status="ok", data=data, eof=answer.eof)

    async def _step(self, message: Any, transfer: _Chunks) -> _Answer:
        if not transfer.chunks:
            await self._end(message.transfer_id)
            return _Answer(eof=True)
        return _Answer(transfer.chunks.pop(0))

    async def _end(self, transfer_id: str) -> None:
        if self._transfers.pop(transfer_id, None) is not None:
            self.ended.append(transfer_id)

    def _failed(self, message: Any, exc: Exception) -> BackupDirReply:
        return BackupDirReply(id=UNSTAMPED, re=message.id, status="failed", message=str(exc))

    def _transfer_of(self, message: Any) -> str:
        return str(message.transfer_id)


class Link:
    """A link whose replies are collected; ``ask`` sends one request and returns its reply."""

    def __init__(self, feature: ChunksFeature) -> None:
        self.feature = feature
        self.replies: asyncio.Queue[BackupDirReply] = asyncio.Queue()
        self.context = LinkContext(send=self._send, ids=IdSequence())
        self._ids = 0

    async def _send(self, message: Any) -> None:
        assert isinstance(message, BackupDirReply)
        await self.replies.put(message)

    async def ask(self, make: Any, *args: Any, **kwargs: Any) -> BackupDirReply:
        self._ids += 1
        self.feature.receive(make(self._ids, *args, **kwargs), self.context)
        async with asyncio.timeout(5):
            reply = await self.replies.get()
        assert reply.re == self._ids
        return reply


async def test_windowed_reads_go_in_order_then_answer_eof_past_the_end_on_their_link() -> None:
    feature = ChunksFeature()
    link = Link(feature)
    assert (await link.ask(Open, "t1", [b"a", b"b"])).status == "ok"
    got = [await link.ask(Read, "t1", seq=seq) for seq in range(4)]
    assert [(r.status, base64.b64decode(r.data), r.eof) for r in got] == [
        ("ok", b"a", False),
        ("ok", b"b", False),
        ("ok", b"", True),
        ("ok", b"", True),
    ]
    assert feature.ended == ["t1"]
    # Another link, or a read without a window, learns nothing of the ended transfer.
    other = Link(feature)
    assert (await other.ask(Read, "t1", seq=4)).message == "no transfer 't1' is open on this link"
    assert (await link.ask(Read, "t1")).status == "failed"
    # The link goes: what ended on it is forgotten.
    feature.detached(link.context)
    assert (await link.ask(Read, "t1", seq=4)).status == "failed"


async def test_a_read_out_of_turn_fails_and_ends_its_transfer() -> None:
    feature = ChunksFeature()
    link = Link(feature)
    await link.ask(Open, "t1", [b"a", b"b"])
    refused = await link.ask(Read, "t1", seq=1)
    assert (refused.status, refused.message) == (
        "failed",
        "read 1 arrived out of order (expected 0)",
    )
    assert feature.ended == ["t1"]
    assert (await link.ask(Read, "t1", seq=0)).status == "failed"


async def test_only_the_latest_ended_reads_are_remembered() -> None:
    feature = ChunksFeature()
    link = Link(feature)
    for n in range(ENDED_READS + 1):
        await link.ask(Open, f"t{n}", [])
        assert (await link.ask(Read, f"t{n}", seq=0)).eof
    assert (await link.ask(Read, "t0", seq=1)).status == "failed"
    assert (await link.ask(Read, "t1", seq=1)).eof


async def test_a_lost_link_ends_its_transfers_and_a_stop_ends_the_rest() -> None:
    feature = ChunksFeature()
    first, second = Link(feature), Link(feature)
    await first.ask(Open, "t1", [b"a"])
    await second.ask(Open, "t2", [b"b"])
    feature.detached(first.context)
    await asyncio.wait_for(asyncio.gather(*feature._ends), 5)
    assert feature.ended == ["t1"]
    await feature._stop()
    assert feature.ended == ["t1", "t2"]


class SlowFeature(ChunksFeature):
    """A read that waits until cancelled and then takes a turn to clean up, as closing a file
    in a thread does; an end that takes a turn too."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()
        self.unwound: list[str] = []

    async def _step(self, message: Any, transfer: _Chunks) -> _Answer:
        self.reading.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # yield: the clean-up itself awaits
            self.unwound.append(message.transfer_id)
        raise AssertionError("not reached")

    async def _end(self, transfer_id: str) -> None:
        await asyncio.sleep(0)  # yield: an end awaits its close
        await super()._end(transfer_id)


async def test_a_stop_waits_for_cancelled_requests_to_unwind_and_for_ends_begun() -> None:
    feature = SlowFeature()
    first, second = Link(feature), Link(feature)
    await first.ask(Open, "t1", [b"a"])
    await second.ask(Open, "t2", [b"b"])
    feature.receive(Read(99, "t2", seq=0), second.context)
    await asyncio.wait_for(feature.reading.wait(), 5)
    feature.detached(first.context)  # t1's end begins; the stop must not cancel it
    await feature._stop()
    # When the stop returns, the read has cleaned up and both transfers have ended.
    assert feature.unwound == ["t2"]
    assert sorted(feature.ended) == ["t1", "t2"]
    await asyncio.sleep(0)  # yield: the tasks' done callbacks run
    assert not feature._requests
    assert not feature._ends
