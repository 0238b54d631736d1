"""The server-directory target's window end to end in one process: the coordinator's store
(coordinator/backups/dir_target.py) writes and reads an artifact through the agent's real
directory feature on a real directory, several chunks in flight, in order; the agent refuses
a chunk out of order and keeps nothing of that write (a real agent and link:
tests/integration/test_dir_target_e2e.py)."""

import asyncio
import base64
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from agent.backup_dirs.feature import BackupDirFeature
from agent.features import LinkContext
from coordinator.backups.dir_target import DirectoryFailed, ServerDirectoryStore
from coordinator.backups.targets import ArtifactSink
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from shared.messages import MAX_CHUNK_BYTES, AgentMessage, CoordinatorMessage, IdSequence
from shared.messages.backup_dirs import (
    BACKUP_DIRS_CAPABILITY,
    BACKUP_DIRS_WINDOW_CAPABILITY,
    BackupDirOpen,
    BackupDirRead,
    BackupDirWrite,
)


class Session:
    """The coordinator's session, wired straight to the agent's feature (no socket): counts
    the chunks in flight and can hold replies back so a window fills."""

    server_id = "srv_1"

    def __init__(self, feature: BackupDirFeature, capabilities: tuple[str, ...]) -> None:
        self.feature = feature
        self.capabilities = frozenset(capabilities)
        self.link = LinkContext(send=self._reply, ids=IdSequence())
        self.waiting: dict[int, asyncio.Future[AgentMessage]] = {}
        self.sent: list[Any] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._ids = 0

    async def _reply(self, message: AgentMessage) -> None:
        self.waiting.pop(cast(Any, message).re).set_result(message)

    async def request(self, build: Callable[[int], CoordinatorMessage], timeout: float) -> Any:
        self._ids += 1
        message = build(self._ids)
        self.sent.append(message)
        future = asyncio.get_running_loop().create_future()
        self.waiting[self._ids] = future
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.feature.receive(message, self.link)
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self.in_flight -= 1


class OneServer:
    def __init__(self, session: Session) -> None:
        self.session = session

    def require(self, server_id: str) -> AgentSession:
        return cast(AgentSession, self.session)


def _names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


async def _add_and_finish(sink: ArtifactSink, plain: bytes) -> None:
    await sink.add(plain)
    await sink.finish()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "backups"
    made.mkdir()
    return Path(os.path.realpath(made))


def _store(root: Path, session: Session) -> ServerDirectoryStore:
    registry = cast(Registry, OneServer(session))
    return ServerDirectoryStore(registry, "srv_1", str(root), os.urandom(32))


async def _round_trip(store: ServerDirectoryStore, parts: list[bytes]) -> bytes:
    sink = await store.open_writer("bkp_1")
    for part in parts:
        await sink.add(part)
    sha256 = await sink.finish()
    got = b""
    async for plain in store.read("bkp_1", sha256):
        got += plain
    return got


async def test_an_artifact_is_written_and_read_back_with_a_window_in_flight(root: Path) -> None:
    session = Session(
        BackupDirFeature((str(root),)), (BACKUP_DIRS_CAPABILITY, BACKUP_DIRS_WINDOW_CAPABILITY)
    )
    parts = [os.urandom(MAX_CHUNK_BYTES // 2) for _ in range(24)]
    assert await _round_trip(_store(root, session), parts) == b"".join(parts)
    assert _names(root) == ["bkp_1.berthbk"]
    writes = [m for m in session.sent if isinstance(m, BackupDirWrite)]
    reads = [m for m in session.sent if isinstance(m, BackupDirRead)]
    assert [m.seq for m in writes] == list(range(len(writes)))
    assert [m.seq for m in reads] == list(range(len(reads)))
    assert session.most_in_flight > 1
    assert session.in_flight == 0


async def test_an_old_agent_is_served_one_chunk_at_a_time_without_seq(root: Path) -> None:
    session = Session(BackupDirFeature((str(root),)), (BACKUP_DIRS_CAPABILITY,))
    parts = [os.urandom(MAX_CHUNK_BYTES // 2) for _ in range(6)]
    assert await _round_trip(_store(root, session), parts) == b"".join(parts)
    assert session.most_in_flight == 1
    assert all(getattr(m, "seq", None) is None for m in session.sent)


async def test_a_write_out_of_order_is_refused_and_leaves_no_file(root: Path) -> None:
    session = Session(BackupDirFeature((str(root),)), ())

    def write(seq: int) -> Callable[[int], CoordinatorMessage]:
        data = base64.b64encode(b"x" * 10).decode()
        return lambda mid: BackupDirWrite(id=mid, transfer_id="t1", data=data, seq=seq)

    opened = await session.request(
        lambda mid: BackupDirOpen(
            id=mid, transfer_id="t1", path=str(root), file_name="bkp_1.berthbk", mode="write"
        ),
        5,
    )
    assert opened.status == "ok"
    assert (await session.request(write(0), 5)).status == "ok"
    refused = await session.request(write(2), 5)
    assert refused.status == "failed"
    assert "backup_dir_write 2 arrived out of order (expected 1)" in refused.message
    assert _names(root) == []
    assert (await session.request(write(1), 5)).status == "failed"


async def test_a_failed_write_mid_window_ends_the_backup_and_leaves_nothing(root: Path) -> None:
    session = Session(
        BackupDirFeature((str(root),)), (BACKUP_DIRS_CAPABILITY, BACKUP_DIRS_WINDOW_CAPABILITY)
    )
    store = _store(root, session)
    sink = await store.open_writer("bkp_1")
    await sink.add(os.urandom(MAX_CHUNK_BYTES * 3))
    # The partial file disappears under the agent (the disk went away): the next write fails.
    for transfer in list(session.feature._transfers.values()):
        os.close(transfer.file.fd)
        transfer.file.fd = os.open(os.devnull, os.O_RDONLY)
    with pytest.raises(DirectoryFailed, match="Bad file descriptor"):
        await _add_and_finish(sink, os.urandom(MAX_CHUNK_BYTES * 12))
    await sink.discard()
    assert _names(root) == []
    assert session.in_flight == 0


async def test_a_read_arriving_while_the_file_closes_after_its_end_answers_eof(
    root: Path,
) -> None:
    # Closing the file at the end runs in a thread; a windowed read that arrives meanwhile
    # found no transfer and failed a good backup (seen in CI under load).
    (root / "bkp_1.berthbk").write_bytes(b"artifact")
    session = Session(
        BackupDirFeature((str(root),)), (BACKUP_DIRS_CAPABILITY, BACKUP_DIRS_WINDOW_CAPABILITY)
    )
    opened = await session.request(
        lambda mid: BackupDirOpen(
            id=mid, transfer_id="t1", path=str(root), file_name="bkp_1.berthbk", mode="read"
        ),
        5,
    )
    assert opened.status == "ok"
    (transfer,) = session.feature._transfers.values()
    closing, release = threading.Event(), threading.Event()
    close = transfer.file.close

    def slow_close() -> None:
        closing.set()
        release.wait(5)
        close()

    transfer.file.close = slow_close  # type: ignore[method-assign]

    def read(seq: int) -> Callable[[int], CoordinatorMessage]:
        return lambda mid: BackupDirRead(id=mid, transfer_id="t1", seq=seq)

    first = await session.request(read(0), 5)
    assert base64.b64decode(first.data) == b"artifact"
    end = asyncio.ensure_future(session.request(read(1), 5))
    await asyncio.to_thread(closing.wait, 5)
    try:
        late = await session.request(read(2), 5)
    finally:
        release.set()
    assert (late.status, late.eof) == ("ok", True)
    last = await end
    assert (last.status, last.eof) == ("ok", True)
