"""Volume replaces as commitments, with stand-in engine operations: the intent record (atomic,
safe names, damaged files set aside), a replace that outlives its link and is not discarded
under the copy, one cut off by the daemon's stop kept for the next start, and the redo on
start (the e2e test, test_volume_restore_atomic_e2e.py, uses real Docker and a real agent)."""

import asyncio
import base64
import io
import json
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from agent.backup_feature import BackupFeature
from agent.runtime import EngineError
from agent.runtime.backup_ops import BackupOps
from agent.runtime.volume_archive import VolumeArchiveOps, VolumeHelper
from agent.volume_intents import ReplaceIntent, ReplaceIntents
from agent.volume_replacer import VolumeReplacer
from shared.errors import InvalidMessage
from shared.messages import (
    REPLACE_UNKNOWN,
    RestoreFinish,
    RestoreWrite,
    VolumeRestoreOpen,
    VolumeRestoreSettle,
)
from tests.unit.agent.test_backup_feature import Sent, _ask, _link

_NO_OPS = cast(BackupOps, object())


def _tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("./a")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    return out.getvalue()


class Volumes:
    """Stand-in volume operations; ``replace`` waits for ``release`` once it has recorded."""

    def __init__(self, running: list[str] | None = None, staged: bool = True) -> None:
        self.running = running or []
        self.staging_exists = staged
        self.release = asyncio.Event()
        self.recorded = asyncio.Event()
        self.replaced: list[tuple[str, list[str], dict[str, str] | None]] = []
        self.discarded: list[str] = []
        self.started: list[str] = []

    async def stage(self, backup_id: str) -> VolumeHelper:
        return cast(VolumeHelper, f"staging-{backup_id}")

    async def fill(self, staged: VolumeHelper, chunks: AsyncIterator[bytes]) -> None:
        async for _chunk in chunks:
            pass

    async def replace(
        self,
        backup_id: str,
        staged: VolumeHelper,
        volume: str,
        *,
        committed: Callable[[list[str], dict[str, str]], Awaitable[None]] | None = None,
        restart: Sequence[str] = (),
        labels: dict[str, str] | None = None,
    ) -> None:
        stopped = list(dict.fromkeys([*restart, *self.running]))
        if committed is not None:
            await committed(stopped, labels or {"berth.managed": "true"})
        self.recorded.set()
        await self.release.wait()
        self.replaced.append((volume, stopped, labels))
        self.started.extend(stopped)

    async def restage(self, backup_id: str) -> VolumeHelper | None:
        return cast(VolumeHelper, f"staging-{backup_id}") if self.staging_exists else None

    async def start(self, container_ids: list[str]) -> None:
        self.started.extend(container_ids)

    async def discard(self, backup_id: str, staged: VolumeHelper | None) -> None:
        self.discarded.append(backup_id)


def _records(state_dir: Path) -> list[str]:
    directory = state_dir / "volume-restores"
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


async def _staged_restore(feature: BackupFeature, sent: Sent, backup_id: str) -> Any:
    link = _link(sent)
    archive = _tar()
    opened = VolumeRestoreOpen(id=1, backup_id=backup_id, volume_name="berth-vol_1", size=99)
    assert (await _ask(feature, link, sent, opened)).status == "ok"
    data = base64.b64encode(archive).decode()
    write = RestoreWrite(id=2, backup_id=backup_id, data=data)
    assert (await _ask(feature, link, sent, write)).status == "ok"
    sent.arrived.clear()
    feature.receive(RestoreFinish(id=3, backup_id=backup_id), link)
    return link


async def test_an_intent_is_written_atomically_and_read_back(tmp_path: Path) -> None:
    intents = ReplaceIntents(tmp_path)
    intent = ReplaceIntent("vbk_1", "berth-vol_1", "berth-vrs-vbk_1", ["c1"], {"k": "v"})
    await intents.save(intent)
    await intents.save(intent)  # a rewrite replaces the file whole
    assert _records(tmp_path) == ["vbk_1.json"]  # no temp file left beside it
    assert (tmp_path / "volume-restores").stat().st_mode & 0o777 == 0o700
    assert await intents.load_all() == [intent]
    await intents.remove("vbk_1")
    await intents.remove("vbk_1")  # gone is fine
    assert await intents.load_all() == []


@pytest.mark.parametrize("backup_id", ["../escape", "a/b", "..", "", "x" * 65, "a b"])
async def test_an_id_that_could_escape_the_directory_is_refused(
    tmp_path: Path, backup_id: str
) -> None:
    with pytest.raises(InvalidMessage):
        ReplaceIntent(backup_id, "berth-vol_1", "berth-vrs-x")
    with pytest.raises(InvalidMessage):
        await ReplaceIntents(tmp_path).remove(backup_id)
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize(
    ("volume", "stopped"), [("../../v", []), ("berth-vol_1", ["c1/../../x"]), ("-v", [])]
)
def test_names_that_are_not_volume_or_container_names_are_refused(
    volume: str, stopped: list[str]
) -> None:
    with pytest.raises(InvalidMessage):
        ReplaceIntent("vbk_1", volume, "berth-vrs-vbk_1", stopped)


async def test_a_damaged_or_misnamed_record_is_set_aside(tmp_path: Path) -> None:
    directory = tmp_path / "volume-restores"
    directory.mkdir()
    (directory / "vbk_1.json").write_text("{not json")
    other = ReplaceIntent("vbk_2", "berth-vol_1", "berth-vrs-vbk_2").to_json()
    (directory / "vbk_3.json").write_text(json.dumps(other))
    (directory / "vbk_4.json").write_text(json.dumps({**other, "backupId": "vbk_4", "x": 1}))
    loaded = await ReplaceIntents(tmp_path).load_all()
    assert [i.backup_id for i in loaded] == ["vbk_4"]
    assert _records(tmp_path) == ["vbk_1.broken", "vbk_3.broken", "vbk_4.json"]


async def test_a_replace_outlives_its_link_and_is_recorded_until_it_ends(tmp_path: Path) -> None:
    volumes = Volumes(running=["c1"])
    feature = BackupFeature(_NO_OPS, cast(VolumeArchiveOps, volumes), tmp_path)
    run = asyncio.create_task(feature.run())
    sent = Sent()
    link = await _staged_restore(feature, sent, "vbk_1")
    async with asyncio.timeout(5):
        await volumes.recorded.wait()
    record = json.loads((tmp_path / "volume-restores" / "vbk_1.json").read_text())
    assert record["volumeName"] == "berth-vol_1"
    assert record["stagingVolume"] == "berth-vrs-vbk_1"
    assert record["stoppedContainers"] == ["c1"]
    # The link goes mid-replace: nothing is discarded under the copy.
    feature.detached(link)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert volumes.discarded == []
    # A new restore of the same backup is refused while its staging volume is in use.
    again = await _ask(
        feature,
        _link(sent),
        sent,
        VolumeRestoreOpen(id=9, backup_id="vbk_1", volume_name="berth-vol_1", size=1),
    )
    assert again.status == "failed"
    assert "still being replaced" in (again.message or "")
    assert volumes.discarded == []
    # The coordinator, back on a new link, asks how the replace ended: answered once it ended.
    settle = VolumeRestoreSettle(id=10, backup_id="vbk_1")
    feature.receive(settle, _link(sent))
    sent.arrived.clear()
    volumes.release.set()
    async with asyncio.timeout(5):
        while not {3, 10} <= {m.re for m in sent}:
            await sent.arrived.wait()
            sent.arrived.clear()
    finished = next(m for m in sent if m.re == 3)
    assert finished.status == "ok"
    settled = next(m for m in sent if m.re == 10)
    assert (settled.backup_id, settled.status, settled.message) == ("vbk_1", "ok", "")
    assert volumes.replaced == [("berth-vol_1", ["c1"], None)]
    assert volumes.discarded == ["vbk_1"]
    assert _records(tmp_path) == []
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_a_replace_cut_off_by_the_daemons_stop_is_redone_on_the_next_start(
    tmp_path: Path,
) -> None:
    volumes = Volumes(running=["c1"])
    feature = BackupFeature(_NO_OPS, cast(VolumeArchiveOps, volumes), tmp_path)
    run = asyncio.create_task(feature.run())
    await _staged_restore(feature, Sent(), "vbk_1")
    async with asyncio.timeout(5):
        await volumes.recorded.wait()
    run.cancel()  # the daemon stops mid-replace
    with pytest.raises(asyncio.CancelledError):
        await run
    # Nothing discarded, nothing started on a volume that is not whole; the record stays.
    assert (volumes.replaced, volumes.discarded, volumes.started) == ([], [], [])
    assert _records(tmp_path) == ["vbk_1.json"]

    # The next start: the container the first try stopped is remembered (it no longer runs).
    again = Volumes(running=[])
    again.release.set()
    replacer = VolumeReplacer(cast(VolumeArchiveOps, again), ReplaceIntents(tmp_path))
    async with asyncio.timeout(5):
        await replacer.resume()
    assert again.replaced == [("berth-vol_1", ["c1"], {"berth.managed": "true"})]
    assert again.started == ["c1"]
    assert again.discarded == ["vbk_1"]
    assert _records(tmp_path) == []
    assert await replacer.settled("vbk_1") == ""  # what the coordinator is told when it asks


async def test_a_record_whose_staging_volume_is_gone_is_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    intents = ReplaceIntents(tmp_path)
    await intents.save(ReplaceIntent("vbk_1", "berth-vol_1", "berth-vrs-vbk_1", ["c1"]))
    volumes = Volumes(staged=False)
    replacer = VolumeReplacer(cast(VolumeArchiveOps, volumes), intents)
    async with asyncio.timeout(5):
        await replacer.resume()
    assert volumes.replaced == []
    assert volumes.started == ["c1"]  # stopped for the lost replace: not left down
    assert _records(tmp_path) == []
    assert "staging volume of restore vbk_1 is gone" in caplog.text
    assert await replacer.busy("vbk_1") is False


async def test_a_replace_the_engine_refuses_is_reported_and_cleaned_up(tmp_path: Path) -> None:
    class Refusing(Volumes):
        async def replace(
            self,
            backup_id: str,
            staged: VolumeHelper,
            volume: str,
            *,
            committed: Callable[[list[str], dict[str, str]], Awaitable[None]] | None = None,
            restart: Sequence[str] = (),
            labels: dict[str, str] | None = None,
        ) -> None:
            assert committed is not None
            await committed(["c1"], {})
            assert _records(tmp_path) == ["vbk_1.json"]
            raise EngineError("emptying volume berth-vol_1 with busybox exited with 1")

    volumes = Refusing()
    feature = BackupFeature(_NO_OPS, cast(VolumeArchiveOps, volumes), tmp_path)
    run = asyncio.create_task(feature.run())
    sent = Sent()
    await _staged_restore(feature, sent, "vbk_1")
    async with asyncio.timeout(5):
        await sent.arrived.wait()
    assert (sent[-1].re, sent[-1].status) == (3, "failed")
    assert "exited with 1" in sent[-1].message
    assert volumes.discarded == ["vbk_1"]
    assert _records(tmp_path) == []  # nothing is redone on the next start
    settled = await _ask(feature, _link(sent), sent, VolumeRestoreSettle(id=4, backup_id="vbk_1"))
    assert (settled.status, settled.message) == ("failed", sent[-2].message)
    unknown = await _ask(feature, _link(sent), sent, VolumeRestoreSettle(id=5, backup_id="vbk_9"))
    assert (unknown.status, unknown.message) == ("failed", REPLACE_UNKNOWN)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
