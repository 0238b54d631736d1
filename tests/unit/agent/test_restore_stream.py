"""A PostgreSQL/MariaDB restore through the backups feature, the real engine operations and the
fake engine: the dump goes into the restore command's stdin (no upload, no file), the last
chunk is held until ``restore_finish``, and a failure or an abort cuts the input short."""

import asyncio
import base64
import json
from typing import Literal, cast

import pytest

from agent.backup_feature import BackupFeature
from agent.features import LinkContext
from agent.runtime.backup_ops import BackupOps
from agent.runtime.engine import EngineClient
from agent.runtime.volume_archive import VolumeArchiveOps
from shared.messages import (
    BackupAbort,
    BackupReply,
    BackupTarget,
    RestoreFinish,
    RestoreOpen,
    RestoreWrite,
)
from tests.unit.agent.fake_engine import FakeEngine, Hijack
from tests.unit.agent.test_backup_feature import Sent, _ask, _link
from tests.unit.agent.test_engine_exec_stdin import EXEC, Command

CONTAINER = "berth-dep-dbr-1"


def _target(kind: Literal["postgres", "mysql"]) -> BackupTarget:
    return BackupTarget(
        dependency_resource_id="dbr_1", kind=kind, database_name="app", username="u", password="pw"
    )


@pytest.fixture
async def feature(engine: FakeEngine) -> BackupFeature:
    engine.routes[("POST", f"/containers/{CONTAINER}/exec")] = (201, {"Id": EXEC})
    api = EngineClient(str(engine.server_address))
    return BackupFeature(BackupOps(api), cast(VolumeArchiveOps, object()))


def _install(engine: FakeEngine, command: Command) -> None:
    engine.routes[("POST", f"/exec/{EXEC}/start")] = Hijack(command.serve)
    engine.routes[("GET", f"/exec/{EXEC}/json")] = command.inspect


async def _write(
    feature: BackupFeature, link: LinkContext, sent: Sent, frame: int, part: bytes
) -> BackupReply:
    data = base64.b64encode(part).decode()
    return await _ask(feature, link, sent, RestoreWrite(id=frame, backup_id="b1", data=data))


@pytest.mark.parametrize(
    ("kind", "command"),
    [
        ("postgres", ["pg_restore", "--clean", "--if-exists", "--no-owner"]),
        ("mysql", ["mariadb", "-h", "127.0.0.1", "-u", "u", "app"]),
    ],
)
async def test_the_dump_streams_into_the_restore_commands_stdin(
    engine: FakeEngine,
    feature: BackupFeature,
    kind: Literal["postgres", "mysql"],
    command: list[str],
) -> None:
    fake = Command()
    _install(engine, fake)
    sent = Sent()
    link = _link(sent)
    opened = await _ask(
        feature, link, sent, RestoreOpen(id=1, backup_id="b1", target=_target(kind), size=9)
    )
    assert opened.status == "ok"
    for frame, part in ((2, b"PGD"), (3, b"MP!"), (4, b"end")):
        assert (await _write(feature, link, sent, frame, part)).status == "ok"
    done = await _ask(feature, link, sent, RestoreFinish(id=5, backup_id="b1", check=False))
    assert done.status == "ok", done.message
    assert bytes(fake.received) == b"PGDMP!end"
    assert fake.saw_eof
    [created] = engine.requests_to("POST", f"/containers/{CONTAINER}/exec")
    body = json.loads(created.body)
    assert body["Cmd"][: len(command)] == command
    assert body["AttachStdin"] is True
    assert body["Env"] == [("PGPASSWORD=pw" if kind == "postgres" else "MYSQL_PWD=pw")]
    if kind == "postgres":
        assert "--single-transaction" in body["Cmd"]
    # Nothing is uploaded into the container, and no file is removed from it afterwards.
    assert not engine.requests_to("PUT", f"/containers/{CONTAINER}/archive")
    assert len(engine.requests_to("POST", f"/containers/{CONTAINER}/exec")) == 1


async def test_an_abort_cuts_the_input_before_the_held_back_last_chunk(
    engine: FakeEngine, feature: BackupFeature
) -> None:
    fake = Command(code=1)
    _install(engine, fake)
    sent = Sent()
    link = _link(sent)
    target = _target("postgres")
    await _ask(feature, link, sent, RestoreOpen(id=1, backup_id="b1", target=target, size=99))
    assert (await _write(feature, link, sent, 2, b"first")).status == "ok"
    assert (await _write(feature, link, sent, 3, b"second")).status == "ok"
    aborted = await _ask(feature, link, sent, BackupAbort(id=4, backup_id="b1"))
    assert aborted.status == "ok"
    # The command saw its input end after the first chunk: the second was never sent.
    assert fake.ended.is_set()
    assert (bytes(fake.received), fake.saw_eof) == (b"first", True)


async def test_a_short_restore_is_refused_at_finish_without_its_last_chunk(
    engine: FakeEngine, feature: BackupFeature
) -> None:
    fake = Command(code=1)
    _install(engine, fake)
    sent = Sent()
    link = _link(sent)
    target = _target("mysql")
    await _ask(feature, link, sent, RestoreOpen(id=1, backup_id="b1", target=target, size=20))
    assert (await _write(feature, link, sent, 2, b"create table t;")).status == "ok"
    assert (await _write(feature, link, sent, 3, b"drop")).status == "ok"
    failed = await _ask(feature, link, sent, RestoreFinish(id=4, backup_id="b1", check=False))
    assert failed.status == "failed"
    assert "after 19 of 20 bytes" in failed.message
    assert (bytes(fake.received), fake.saw_eof) == (b"create table t;", True)


async def test_a_failing_restore_answers_its_exit_code_and_stderr(
    engine: FakeEngine, feature: BackupFeature
) -> None:
    fake = Command(code=1, err=b'pg_restore: error: could not execute query: "items" exists')
    _install(engine, fake)
    sent = Sent()
    link = _link(sent)
    target = _target("postgres")
    await _ask(feature, link, sent, RestoreOpen(id=1, backup_id="b1", target=target, size=5))
    assert (await _write(feature, link, sent, 2, b"PGDMP")).status == "ok"
    failed = await _ask(feature, link, sent, RestoreFinish(id=3, backup_id="b1", check=False))
    assert failed.status == "failed"
    assert failed.message.startswith("the restore exited with 1: pg_restore: error")
    assert bytes(fake.received) == b"PGDMP"
    # The transfer is over.
    late = await _ask(feature, link, sent, RestoreFinish(id=4, backup_id="b1", check=False))
    assert "no transfer" in late.message


async def test_a_lost_link_cancels_a_streamed_restore(
    engine: FakeEngine, feature: BackupFeature
) -> None:
    fake = Command(code=1)
    _install(engine, fake)
    sent = Sent()
    link = _link(sent)
    target = _target("postgres")
    await _ask(feature, link, sent, RestoreOpen(id=1, backup_id="b1", target=target, size=99))
    assert (await _write(feature, link, sent, 2, b"one")).status == "ok"
    assert (await _write(feature, link, sent, 3, b"two")).status == "ok"
    feature.detached(link)
    assert await asyncio.to_thread(fake.ended.wait, 10)
    assert (bytes(fake.received), fake.saw_eof) == (b"one", True)
