"""The agent's backups feature with stand-in engine operations: chunk order, failures answered
with the reason, and transfers ended when their link goes (the e2e test uses real Docker)."""

import asyncio
import base64
import io
import tarfile
from collections.abc import AsyncIterator
from typing import Any, cast

from agent.backup_feature import BackupFeature
from agent.features import LinkContext
from agent.runtime import EngineError
from agent.runtime.backup_ops import BackupOps, DumpStream
from agent.runtime.tar_census import TarCensus
from agent.runtime.volume_archive import VolumeArchiveOps
from shared.messages import (
    MAX_CHUNK_BYTES,
    BackupOpen,
    BackupRead,
    BackupReply,
    BackupTarget,
    IdSequence,
    RestoreFinish,
    RestoreOpen,
    RestoreWrite,
    VolumeBackupOpen,
    VolumeVerifyOpen,
)

TARGET = BackupTarget(
    dependency_resource_id="dbr_1", kind="postgres", database_name="d", username="u", password="p"
)

# These tests send database transfers only: a volume call would fail loudly.
_NO_VOLUMES = cast(VolumeArchiveOps, object())


class Dump:
    def __init__(self, parts: list[bytes], fail: bool = False) -> None:
        self.parts = parts
        self.fail = fail
        self.closed = asyncio.Event()

    async def read(self, limit: int) -> bytes:
        if self.parts:
            return self.parts.pop(0)
        if self.fail:
            raise EngineError("the dump exited with 1: permission denied")
        return b""

    def close(self) -> None:
        self.closed.set()


class Ops:
    def __init__(self, dump: Dump, upload_fails: bool = False) -> None:
        self.dump_stream = dump
        self.upload_fails = upload_fails
        self.uploaded = b""
        self.restored: list[str] = []
        self.removed: list[str] = []

    async def dump(self, target: BackupTarget) -> DumpStream:
        return cast(DumpStream, self.dump_stream)

    async def upload(
        self, target: BackupTarget, file_name: str, size: int, chunks: AsyncIterator[bytes]
    ) -> None:
        async for chunk in chunks:
            if self.upload_fails:
                raise EngineError("no space left on device")
            self.uploaded += chunk

    async def restore(self, target: BackupTarget, file_name: str) -> None:
        self.restored.append(file_name)

    async def counts(self, target: BackupTarget) -> tuple[int, int]:
        return 2, 10

    async def remove_file(self, target: BackupTarget, file_name: str) -> None:
        self.removed.append(file_name)


class Sent(list[Any]):
    """Frames the feature sent; ``arrived`` is set by each."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()


def _link(sent: Sent) -> LinkContext:
    async def send(message: Any) -> None:
        sent.append(message)
        sent.arrived.set()

    return LinkContext(send=send, ids=IdSequence())


async def _ask(feature: BackupFeature, link: LinkContext, sent: Sent, message: Any) -> BackupReply:
    sent.arrived.clear()
    feature.receive(message, link)
    async with asyncio.timeout(5):
        await sent.arrived.wait()
    reply = sent[-1]
    assert isinstance(reply, BackupReply)
    assert reply.re == message.id
    return reply


async def test_a_dump_is_read_in_order_then_ends() -> None:
    sent = Sent()
    link = _link(sent)
    feature = BackupFeature(cast(BackupOps, Ops(Dump([b"PGDMP", b"rest"]))), _NO_VOLUMES)
    assert (
        await _ask(feature, link, sent, BackupOpen(id=1, backup_id="b1", target=TARGET))
    ).status == "ok"
    got = []
    for frame in range(2, 6):
        reply = await _ask(feature, link, sent, BackupRead(id=frame, backup_id="b1"))
        assert reply.status == "ok"
        if reply.eof:
            break
        got.append(base64.b64decode(reply.data))
    # Small engine reads are gathered into one chunk (agent/runtime/chunk_fill.py), in order.
    assert b"".join(got) == b"PGDMPrest"
    # The transfer is over: a further read names no transfer.
    late = await _ask(feature, link, sent, BackupRead(id=9, backup_id="b1"))
    assert (late.status, "no transfer" in late.message) == ("failed", True)


async def test_a_failing_dump_answers_its_reason_and_a_lost_link_ends_transfers() -> None:
    sent = Sent()
    link = _link(sent)
    dump = Dump([b"x" * MAX_CHUNK_BYTES], fail=True)
    feature = BackupFeature(cast(BackupOps, Ops(dump)), _NO_VOLUMES)
    await _ask(feature, link, sent, BackupOpen(id=1, backup_id="b1", target=TARGET))
    assert (await _ask(feature, link, sent, BackupRead(id=2, backup_id="b1"))).status == "ok"
    failed = await _ask(feature, link, sent, BackupRead(id=3, backup_id="b1"))
    assert failed.status == "failed"
    assert "permission denied" in failed.message
    assert dump.closed.is_set()

    other = Dump([b"y"])
    feature = BackupFeature(cast(BackupOps, Ops(other)), _NO_VOLUMES)
    await _ask(feature, link, sent, BackupOpen(id=4, backup_id="b2", target=TARGET))
    feature.detached(link)
    async with asyncio.timeout(5):
        await other.closed.wait()


# Redis restores upload the RDB first (PostgreSQL and MariaDB stream: test_restore_stream.py).
REDIS = BackupTarget(
    dependency_resource_id="dbr_1",
    kind="redis",
    database_name="0",
    username="default",
    password="p",
)


async def test_a_redis_restore_uploads_every_byte_then_restores_and_counts() -> None:
    sent = Sent()
    link = _link(sent)
    ops = Ops(Dump([]))
    feature = BackupFeature(cast(BackupOps, ops), _NO_VOLUMES)
    await _ask(feature, link, sent, RestoreOpen(id=1, backup_id="b1", target=REDIS, size=6))
    for frame, part in ((2, b"PGD"), (3, b"MP!")):
        data = base64.b64encode(part).decode()
        reply = await _ask(feature, link, sent, RestoreWrite(id=frame, backup_id="b1", data=data))
        assert reply.status == "ok"
    done = await _ask(feature, link, sent, RestoreFinish(id=4, backup_id="b1", check=True))
    assert (done.status, done.tables, done.rows) == ("ok", 2, 10)
    assert ops.uploaded == b"PGDMP!"
    assert ops.restored == ["berth-restore-b1.dump"]


async def test_a_failed_upload_fails_the_next_write_instead_of_hanging() -> None:
    sent = Sent()
    link = _link(sent)
    ops = Ops(Dump([]), upload_fails=True)
    feature = BackupFeature(cast(BackupOps, ops), _NO_VOLUMES)
    await _ask(feature, link, sent, RestoreOpen(id=1, backup_id="b1", target=REDIS, size=99))
    replies = []
    for frame in range(2, 10):
        data = base64.b64encode(b"z" * 10).decode()
        reply = await _ask(feature, link, sent, RestoreWrite(id=frame, backup_id="b1", data=data))
        replies.append(reply.status)
        if reply.status == "failed":
            assert "no space left" in reply.message
            break
    assert replies[-1] == "failed"
    assert ops.removed == ["berth-restore-b1.dump"]
    assert ops.restored == []


class Volumes:
    """Stand-in volume operations: the staging volume is a byte string, counted for real."""

    def __init__(self, archive: bytes) -> None:
        self.archive = archive
        self.staged = b""
        self.replaced: list[str] = []
        self.discarded: list[str] = []

    async def read(self, backup_id: str, volume: str, stop_users: bool = False) -> Any:
        return Dump([self.archive[:700], self.archive[700:]])

    async def stage(self, backup_id: str) -> str:
        return f"staging-{backup_id}"

    async def fill(self, staged: str, chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            self.staged += chunk

    async def census(self, staged: str) -> Any:
        census = TarCensus()
        await census.feed(self.staged)
        return await census.finish()

    async def replace(self, backup_id: str, staged: str, volume: str) -> None:
        self.replaced.append(volume)

    async def discard(self, backup_id: str, staged: str | None) -> None:
        self.discarded.append(backup_id)


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


async def test_a_volume_backup_ends_with_its_manifest() -> None:
    sent = Sent()
    link = _link(sent)
    volumes = Volumes(_tar({"./a": b"12345", "./b": b"678"}))
    feature = BackupFeature(cast(BackupOps, Ops(Dump([]))), cast(VolumeArchiveOps, volumes))
    opened = VolumeBackupOpen(id=1, backup_id="vb1", volume_name="berth-vol_1")
    assert (await _ask(feature, link, sent, opened)).status == "ok"
    first = await _ask(feature, link, sent, BackupRead(id=2, backup_id="vb1"))
    assert (first.eof, first.manifest) == (False, None)
    last = await _ask(feature, link, sent, BackupRead(id=4, backup_id="vb1"))
    assert last.eof
    assert last.manifest is not None
    assert (last.manifest.entries, last.manifest.files, last.manifest.file_bytes) == (2, 2, 8)


async def test_a_volume_verification_counts_the_staging_volume_and_replaces_nothing() -> None:
    sent = Sent()
    link = _link(sent)
    archive = _tar({"./a": b"12345", "./b": b"678"})
    volumes = Volumes(archive)
    feature = BackupFeature(cast(BackupOps, Ops(Dump([]))), cast(VolumeArchiveOps, volumes))
    opened = VolumeVerifyOpen(id=1, backup_id="vrf-vb1", size=len(archive))
    assert (await _ask(feature, link, sent, opened)).status == "ok"
    data = base64.b64encode(archive).decode()
    write = RestoreWrite(id=2, backup_id="vrf-vb1", data=data)
    assert (await _ask(feature, link, sent, write)).status == "ok"
    done = await _ask(feature, link, sent, RestoreFinish(id=3, backup_id="vrf-vb1", check=True))
    assert done.status == "ok"
    assert done.manifest is not None
    assert (done.manifest.files, done.manifest.file_bytes) == (2, 8)
    assert volumes.replaced == []
    assert volumes.discarded == ["vrf-vb1"]  # the throwaway volume is removed


async def test_a_volume_verification_of_a_broken_archive_fails_with_the_reason() -> None:
    sent = Sent()
    link = _link(sent)
    archive = _tar({"./a": b"12345" * 400})[:1500]
    volumes = Volumes(archive)
    feature = BackupFeature(cast(BackupOps, Ops(Dump([]))), cast(VolumeArchiveOps, volumes))
    await _ask(feature, link, sent, VolumeVerifyOpen(id=1, backup_id="v2", size=len(archive)))
    data = base64.b64encode(archive).decode()
    await _ask(feature, link, sent, RestoreWrite(id=2, backup_id="v2", data=data))
    done = await _ask(feature, link, sent, RestoreFinish(id=3, backup_id="v2", check=True))
    assert done.status == "failed"
    assert "end of data" in done.message
    assert volumes.discarded == ["v2"]
