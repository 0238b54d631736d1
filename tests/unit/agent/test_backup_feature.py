"""The agent's backups feature with stand-in engine operations: chunk order, failures answered
with the reason, and transfers ended when their link goes (the e2e test uses real Docker)."""

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any, cast

from agent.backup_feature import BackupFeature
from agent.features import LinkContext
from agent.runtime import EngineError
from agent.runtime.backup_ops import BackupOps, DumpStream
from agent.runtime.volume_archive import VolumeArchiveOps
from shared.messages import (
    BackupOpen,
    BackupRead,
    BackupReply,
    BackupTarget,
    IdSequence,
    RestoreFinish,
    RestoreOpen,
    RestoreWrite,
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
    assert got == [b"PGDMP", b"rest"]
    # The transfer is over: a further read names no transfer.
    late = await _ask(feature, link, sent, BackupRead(id=9, backup_id="b1"))
    assert (late.status, "no transfer" in late.message) == ("failed", True)


async def test_a_failing_dump_answers_its_reason_and_a_lost_link_ends_transfers() -> None:
    sent = Sent()
    link = _link(sent)
    dump = Dump([b"x"], fail=True)
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
