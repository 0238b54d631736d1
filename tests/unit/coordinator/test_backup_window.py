"""The coordinator's backup window with a stand-in agent: chunks in flight in ``seq`` order,
replies consumed in order however they complete, a failure mid-window ending the transfer with
nothing kept, and old agents served one chunk at a time without ``seq`` (real agents and Docker:
tests/integration/test_backups_e2e.py and test_restore_stream_e2e.py)."""

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any, cast

import pytest

from coordinator.backups.runner import BackupRunner, TransferFailed
from coordinator.backups.targets import CoordinatorStore
from coordinator.backups.window import WINDOW, read_replies, window_of, write_chunks
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from coordinator.secrets import Keyring
from coordinator.settings import Settings
from shared.messages import (
    MAX_CHUNK_BYTES,
    UNSTAMPED,
    BackupOpen,
    BackupRead,
    BackupReply,
    BackupTarget,
    CoordinatorMessage,
    RestoreWrite,
)
from shared.messages.backups import BACKUP_WINDOW_CAPABILITY
from tests.harness import eventually

TARGET = BackupTarget(
    dependency_resource_id="dbr_1", kind="postgres", database_name="d", username="u", password="p"
)


class Agent:
    """Answers backup requests like an agent, the later ones of a window sooner (so replies
    complete out of order), and records what it received and how much was in flight."""

    def __init__(
        self, dump: list[bytes], fail_seq: int | None = None, capabilities: tuple[str, ...] = ()
    ) -> None:
        self.capabilities = frozenset(capabilities)
        self.dump = list(dump)
        self.fail_seq = fail_seq
        self.received: list[CoordinatorMessage] = []
        self.written = b""
        self.in_flight = 0
        self.most_in_flight = 0
        self.ended = False
        self.next_id = 0

    async def request(
        self, build: Callable[[int], CoordinatorMessage], timeout: float
    ) -> BackupReply:
        self.next_id += 1
        message: Any = build(self.next_id)
        self.received.append(message)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            # Answered in the order received (as the agent does), delivered so that an earlier
            # seq waits longer: completion order is the reverse of sending order.
            reply = self._answer(message)
            seq = getattr(message, "seq", None)
            for _ in range(8 - (seq or 0) % 8):
                await asyncio.sleep(0)
            return reply
        finally:
            self.in_flight -= 1

    def _answer(self, message: Any) -> BackupReply:
        def reply(**fields: Any) -> BackupReply:
            return BackupReply(id=UNSTAMPED, re=message.id, backup_id="b1", **fields)

        if self.ended:
            return reply(status="failed", message="no transfer 'b1' is open on this link")
        if isinstance(message, BackupOpen):
            return reply(status="ok")
        if message.seq is not None and message.seq == self.fail_seq:
            self.ended = True
            return reply(status="failed", message="the dump exited with 1: disk full")
        if isinstance(message, BackupRead):
            if not self.dump:
                return reply(status="ok", eof=True)
            return reply(status="ok", data=base64.b64encode(self.dump.pop(0)).decode())
        assert isinstance(message, RestoreWrite)
        self.written += base64.b64decode(message.data)
        return reply(status="ok")


def _session(agent: Agent) -> AgentSession:
    return cast(AgentSession, agent)


async def _lines(parts: list[bytes]) -> AsyncIterator[str]:
    for part in parts:
        yield base64.b64encode(part).decode()


async def test_reads_go_out_in_seq_order_and_replies_are_consumed_in_order() -> None:
    parts = [f"chunk {n};".encode() for n in range(20)]
    agent = Agent(parts)
    got = []
    async for reply in read_replies(_session(agent), "b1", 4, BackupRunner.ask, 5.0):
        if reply.eof:
            break
        got.append(base64.b64decode(reply.data))
    assert got == parts
    reads = [m for m in agent.received if isinstance(m, BackupRead)]
    assert [m.seq for m in reads] == list(range(len(reads)))
    # A window of reads went out past the end (answered eof), never more than four at once.
    assert len(reads) > len(parts) + 1
    assert agent.most_in_flight == 4
    assert agent.in_flight == 0


async def test_writes_go_out_in_seq_order_with_at_most_a_window_in_flight() -> None:
    parts = [os.urandom(100) for _ in range(30)]
    agent = Agent([])
    await write_chunks(_session(agent), "b1", _lines(parts), 6, BackupRunner.ask, 5.0)
    assert agent.written == b"".join(parts)
    assert [getattr(m, "seq", None) for m in agent.received] == list(range(30))
    assert agent.most_in_flight == 6
    assert agent.in_flight == 0


async def test_a_window_of_one_is_the_old_exchange_without_seq() -> None:
    parts = [b"a", b"b", b"c"]
    agent = Agent([])
    await write_chunks(_session(agent), "b1", _lines(parts), 1, BackupRunner.ask, 5.0)
    assert agent.written == b"abc"
    assert agent.most_in_flight == 1
    assert all(getattr(m, "seq", 0) is None for m in agent.received)


async def test_a_failed_write_mid_window_ends_the_transfer_with_its_reason() -> None:
    agent = Agent([], fail_seq=5)
    parts = [bytes([n]) * 10 for n in range(40)]
    with pytest.raises(TransferFailed, match="disk full"):
        await write_chunks(_session(agent), "b1", _lines(parts), 4, BackupRunner.ask, 5.0)
    # Nothing past the window after the failure was sent, and nothing is left in flight.
    assert len(agent.received) <= 5 + 4
    assert agent.in_flight == 0


async def test_a_consumer_cancelled_mid_transfer_leaves_nothing_in_flight() -> None:
    agent = Agent([b"x"] * 100)
    started = asyncio.Event()

    async def consume() -> None:
        replies = read_replies(_session(agent), "b1", 8, BackupRunner.ask, 5.0)
        async with aclosing(replies):
            async for _ in replies:
                started.set()
                await asyncio.Event().wait()

    task = asyncio.ensure_future(consume())
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert agent.in_flight == 0


async def test_a_transfer_cancelled_while_waiting_cancels_its_requests() -> None:
    class Silent(Agent):
        async def request(
            self, build: Callable[[int], CoordinatorMessage], timeout: float
        ) -> BackupReply:
            self.in_flight += 1
            try:
                await asyncio.Event().wait()
            finally:
                self.in_flight -= 1
            raise AssertionError("never answered")

    agent = Silent([])
    task = asyncio.ensure_future(
        anext(read_replies(_session(agent), "b1", 8, BackupRunner.ask, 5.0))
    )

    async def all_sent() -> bool:
        return agent.in_flight == 8

    await eventually(all_sent, timeout=5, what="a window of reads")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert agent.in_flight == 0


def test_only_agents_that_advertise_it_get_a_window() -> None:
    new, old = Agent([], capabilities=("backups.v1", BACKUP_WINDOW_CAPABILITY)), Agent([])
    assert window_of(_session(new)) == WINDOW > 1
    assert window_of(_session(old)) == 1


def _runner(tmp_path: Path) -> BackupRunner:
    settings = Settings(data_dir=tmp_path)
    return BackupRunner(Registry(), cast(Keyring, object()), settings)


async def test_a_failure_mid_window_keeps_no_artifact(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    agent = Agent([b"y" * 1000] * 30, fail_seq=7, capabilities=(BACKUP_WINDOW_CAPABILITY,))
    store = CoordinatorStore(tmp_path / "backups", runner.key)
    with pytest.raises(TransferFailed, match="disk full"):
        await runner.pull(
            _session(agent),
            "b1",
            store,
            lambda mid: BackupOpen(id=mid, backup_id="b1", target=TARGET),
        )
    assert not await store.exists("b1")
    assert list((tmp_path / "backups").iterdir()) == []
    assert agent.in_flight == 0


async def test_a_windowed_pull_then_send_round_trips_every_byte(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    parts = [os.urandom(5000) for _ in range(100)]
    reader = Agent(parts, capabilities=(BACKUP_WINDOW_CAPABILITY,))
    store = CoordinatorStore(tmp_path / "backups", runner.key)
    sink, sha256 = await runner.pull(
        _session(reader), "b1", store, lambda mid: BackupOpen(id=mid, backup_id="b1", target=TARGET)
    )
    assert sink.plain_bytes == sum(map(len, parts))
    writer = Agent([], capabilities=(BACKUP_WINDOW_CAPABILITY,))
    await runner.send(_session(writer), "b1", "b1", sha256, store)
    assert writer.written == b"".join(parts)
    # Records of 5000 bytes go back as full frames (the tail last).
    sizes = [len(base64.b64decode(m.data)) for m in writer.received if isinstance(m, RestoreWrite)]
    assert sizes == [MAX_CHUNK_BYTES, 100 * 5000 - MAX_CHUNK_BYTES]
