"""The encrypted artifact format: round trip, every kind of damage refused, and no file left
open by a writer whose caller was cancelled."""

import asyncio
import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

from coordinator.backups import targets
from coordinator.backups.artifacts import ArtifactDamaged, ArtifactWriter, load_key, read_chunks
from tests.harness import eventually


def _write(tmp_path: Path, key: bytes, chunks: list[bytes]) -> tuple[Path, str]:
    writer = ArtifactWriter(tmp_path / "b.berthbk", key, "dbk_1")
    for chunk in chunks:
        writer.add(chunk)
    return writer.path, writer.finish()


def test_round_trip_and_checksum_of_the_stored_file(tmp_path: Path) -> None:
    key = load_key(tmp_path / "backup.key")
    chunks = [os.urandom(1000), b"PGDMP" * 10, os.urandom(70_000)]
    path, sha = _write(tmp_path, key, chunks)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert list(read_chunks(path, key, "dbk_1", sha)) == chunks
    assert b"PGDMP" not in path.read_bytes()
    assert not (tmp_path / "b.berthbk.partial").exists()
    assert stat.S_IMODE((tmp_path / "backup.key").stat().st_mode) == 0o600
    assert load_key(tmp_path / "backup.key") == key  # read back, not replaced


def test_wrong_key_other_backup_truncation_and_flipped_bits_are_refused(tmp_path: Path) -> None:
    key = load_key(tmp_path / "backup.key")
    path, sha = _write(tmp_path, key, [b"a" * 100, b"b" * 100])
    with pytest.raises(ArtifactDamaged, match="does not decrypt"):
        list(read_chunks(path, bytes(32), "dbk_1", sha))
    with pytest.raises(ArtifactDamaged, match="does not decrypt"):
        list(read_chunks(path, key, "dbk_2", sha))
    raw = path.read_bytes()
    # Cut off after the first record: the closing record is missing.
    cut = tmp_path / "cut"
    cut.write_bytes(raw[: 16 + 4 + 116])
    with pytest.raises(ArtifactDamaged, match="cut short"):
        list(read_chunks(cut, key, "dbk_1", hashlib.sha256(cut.read_bytes()).hexdigest()))
    flipped = bytearray(raw)
    flipped[40] ^= 1
    path.write_bytes(bytes(flipped))
    with pytest.raises(ArtifactDamaged):
        list(read_chunks(path, key, "dbk_1", sha))
    path.write_bytes(raw)
    with pytest.raises(ArtifactDamaged, match="SHA-256"):
        list(read_chunks(path, key, "dbk_1", "0" * 64))


def test_a_discarded_writer_leaves_nothing(tmp_path: Path) -> None:
    writer = ArtifactWriter(tmp_path / "b.berthbk", load_key(tmp_path / "k"), "dbk_1")
    writer.add(b"x" * 10)
    writer.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_a_chunk_that_comes_after_the_discard_writes_nothing(tmp_path: Path) -> None:
    """A pull cancelled while its chunk was being written in a thread discards at once: the
    thread's write, done later, must not bring the partial file back."""
    writer = ArtifactWriter(tmp_path / "b.berthbk", load_key(tmp_path / "k"), "dbk_1")
    writer.discard()
    with pytest.raises(ValueError, match="discarded"):
        writer.add(b"x" * 10)
    with pytest.raises(ValueError, match="discarded"):
        writer.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_a_writer_holds_no_open_file_between_calls(tmp_path: Path) -> None:
    """A writer dropped mid-transfer (a stopping coordinator) cannot leak a descriptor."""
    before = set(os.listdir("/proc/self/fd"))
    writer = ArtifactWriter(tmp_path / "b.berthbk", load_key(tmp_path / "k"), "dbk_1")
    writer.add(b"x" * 10)
    assert set(os.listdir("/proc/self/fd")) == before
    del writer


async def test_a_writer_opened_after_its_caller_was_cancelled_is_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A coordinator stopping mid-``open_writer`` (its pull cancelled while the thread opens
    the file): the file the thread opens afterwards is closed and removed, not collected
    open with its partial file left behind."""
    entered, release = threading.Event(), threading.Event()
    opened: list[ArtifactWriter] = []

    class SlowWriter(ArtifactWriter):
        def __init__(self, path: Path, key: bytes, backup_id: str) -> None:
            entered.set()
            release.wait(5)
            super().__init__(path, key, backup_id)
            opened.append(self)

    monkeypatch.setattr(targets, "ArtifactWriter", SlowWriter)
    store = targets.CoordinatorStore(tmp_path, load_key(tmp_path / "backup.key"))
    task = asyncio.create_task(store.open_writer("dbk_1"))
    await asyncio.to_thread(entered.wait, 5)
    task.cancel()
    await asyncio.sleep(0)  # yield: the cancellation reaches open_writer
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    partial = tmp_path / "dbk_1.berthbk.partial"

    async def discarded() -> bool:  # the thread finishes on its own
        return bool(opened) and opened[0].discarded

    await eventually(discarded, timeout=5, what="the late writer discarded")
    assert not partial.exists()
