"""The server-directory backup target on the agent: the path rules (roots, ``..``, symbolic
links), and the feature on a real directory: partial file until finish, read back in chunks,
delete, stat, and nothing left when a write is aborted or its link goes."""

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import pytest

from agent.backup_dirs.feature import BackupDirFeature
from agent.backup_dirs.paths import PathRefused, allowed_dir
from agent.features import LinkContext
from agent.settings import AgentSettings, SettingsError
from shared.messages import MAX_CHUNK_BYTES, AgentMessage, IdSequence
from shared.messages.backup_dirs import (
    BackupDirAbort,
    BackupDirCheck,
    BackupDirDelete,
    BackupDirFinish,
    BackupDirOpen,
    BackupDirRead,
    BackupDirReply,
    BackupDirStat,
    BackupDirWrite,
)
from tests.polling import eventually

NAME = "bkp_one.berthbk"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "backups"
    made.mkdir()
    return Path(os.path.realpath(made))


def test_a_directory_under_a_root_is_allowed(root: Path) -> None:
    assert allowed_dir((str(root),), str(root)) == root
    assert allowed_dir((str(root),), f"{root}/db/nightly/") == root / "db" / "nightly"


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("relative/dir", "absolute"),
        ("{root}/../escape", "'..'"),
        ("{root}/./x", "'..'"),
        ("{root}-sibling", "outside this agent's backup directories"),
        ("/etc", "outside this agent's backup directories"),
        ("/", "outside this agent's backup directories"),
    ],
)
def test_paths_outside_or_climbing_are_refused(root: Path, given: str, reason: str) -> None:
    with pytest.raises(PathRefused, match=reason):
        allowed_dir((str(root),), given.format(root=root))


def test_no_roots_refuses_everything_naming_the_variable(root: Path) -> None:
    with pytest.raises(PathRefused, match="BERTH_AGENT_BACKUP_DIRS is empty"):
        allowed_dir((), str(root))


def test_a_symbolic_link_under_a_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(PathRefused, match="symbolic link"):
        allowed_dir((str(root),), f"{root}/link")
    with pytest.raises(PathRefused, match="symbolic link"):
        allowed_dir((str(root),), f"{root}/link/deeper")


def test_settings_read_backup_dirs(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    monkeypatch.setenv("BERTH_AGENT_BACKUP_DIRS", f"{root}, /srv/berth-backups")
    assert AgentSettings.from_env().backup_dirs == (str(root), "/srv/berth-backups")
    monkeypatch.setenv("BERTH_AGENT_BACKUP_DIRS", "/")
    with pytest.raises(SettingsError, match="BERTH_AGENT_BACKUP_DIRS must not allow"):
        AgentSettings.from_env()


class Peer:
    """The coordinator's side of one link: requests in, the feature's replies out."""

    def __init__(self, feature: BackupDirFeature) -> None:
        self.feature = feature
        self.replies: asyncio.Queue[AgentMessage] = asyncio.Queue()
        self.link = LinkContext(send=self._send, ids=IdSequence())
        self._ids = 0

    async def _send(self, message: AgentMessage) -> None:
        await self.replies.put(message)

    async def ask(self, build: Any) -> BackupDirReply:
        self._ids += 1
        self.feature.receive(build(self._ids), self.link)
        reply = await asyncio.wait_for(self.replies.get(), 10)
        assert isinstance(reply, BackupDirReply)
        assert reply.re == self._ids
        return reply


def _open(root: Path, mode: Any, transfer: str = "t1", path: str = "") -> Any:
    return lambda mid: BackupDirOpen(
        id=mid, transfer_id=transfer, path=path or f"{root}/db", file_name=NAME, mode=mode
    )


def _write(data: bytes, transfer: str = "t1") -> Any:
    encoded = base64.b64encode(data).decode()
    return lambda mid: BackupDirWrite(id=mid, transfer_id=transfer, data=encoded)


async def test_a_write_is_partial_until_finish_then_reads_back_in_chunks(root: Path) -> None:
    peer = Peer(BackupDirFeature((str(root),)))
    payload = os.urandom(MAX_CHUNK_BYTES * 2 + 1000)
    assert (await peer.ask(_open(root, "write"))).status == "ok"
    for at in range(0, len(payload), MAX_CHUNK_BYTES):
        assert (await peer.ask(_write(payload[at : at + MAX_CHUNK_BYTES]))).status == "ok"
    # Not an artifact yet: only the partial file exists, and stat says so.
    assert sorted(p.name for p in (root / "db").iterdir()) == [f"{NAME}.partial"]
    stat = lambda mid: BackupDirStat(id=mid, path=f"{root}/db", file_name=NAME)  # noqa: E731
    assert (await peer.ask(stat)).exists is False
    assert (await peer.ask(lambda mid: BackupDirFinish(id=mid, transfer_id="t1"))).status == "ok"
    assert sorted(p.name for p in (root / "db").iterdir()) == [NAME]
    assert (root / "db" / NAME).read_bytes() == payload
    assert (root / "db" / NAME).stat().st_mode & 0o077 == 0
    shown = await peer.ask(stat)
    assert (shown.exists, shown.size) == (True, len(payload))

    assert (await peer.ask(_open(root, "read", "t2"))).status == "ok"
    got = b""
    while not (reply := await peer.ask(lambda mid: BackupDirRead(id=mid, transfer_id="t2"))).eof:
        chunk = base64.b64decode(reply.data)
        assert 0 < len(chunk) <= MAX_CHUNK_BYTES
        got += chunk
    assert got == payload

    delete = lambda mid: BackupDirDelete(id=mid, path=f"{root}/db", file_name=NAME)  # noqa: E731
    assert (await peer.ask(delete)).status == "ok"
    assert list((root / "db").iterdir()) == []
    assert (await peer.ask(delete)).status == "ok"  # gone already: still fine


async def test_an_aborted_or_orphaned_write_leaves_nothing(root: Path) -> None:
    feature = BackupDirFeature((str(root),))
    peer = Peer(feature)
    await peer.ask(_open(root, "write"))
    await peer.ask(_write(b"half"))
    assert (await peer.ask(lambda mid: BackupDirAbort(id=mid, transfer_id="t1"))).status == "ok"
    assert list((root / "db").iterdir()) == []
    # The link goes mid-write: the partial file is removed too.
    await peer.ask(_open(root, "write", "t3"))
    await peer.ask(_write(b"half", "t3"))
    feature.detached(peer.link)

    async def emptied() -> bool:
        return not list((root / "db").iterdir())

    await eventually(emptied, timeout=5, what="the orphaned partial file removed")


async def test_refusals_are_failed_replies_with_the_reason_and_roots(
    root: Path, tmp_path: Path
) -> None:
    peer = Peer(BackupDirFeature((str(root),)))
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    for path, reason in (
        ("/etc", "outside this agent's backup directories"),
        (f"{root}/../outside", "'..'"),
        (f"{root}/link", "symbolic link"),
    ):
        check = await peer.ask(lambda mid, p=path: BackupDirCheck(id=mid, path=p))
        assert check.status == "failed"
        assert reason in check.message
        assert check.allowed_roots == [str(root)]
        opened = await peer.ask(_open(root, "write", path=path))
        assert opened.status == "failed"
        assert reason in opened.message
    assert list(outside.iterdir()) == []
    # A read of an artifact that is not there fails; a write on a read transfer too.
    assert (await peer.ask(_open(root, "read"))).status == "failed"
    (root / "db").mkdir(exist_ok=True)
    (root / "db" / NAME).write_bytes(b"x")
    await peer.ask(_open(root, "read", "t4"))
    assert (await peer.ask(_write(b"no", "t4"))).status == "failed"
    assert (root / "db" / NAME).read_bytes() == b"x"
    # The artifact itself as a link: never followed.
    (root / "db" / NAME).unlink()
    (root / "db" / NAME).symlink_to(outside / "target")
    assert (await peer.ask(_open(root, "read", "t5"))).status == "failed"


async def test_partial_files_a_killed_agent_left_are_removed_at_start(
    root: Path, tmp_path: Path
) -> None:
    (root / "db").mkdir()
    (root / "db" / f"{NAME}.partial").write_bytes(b"half")
    (root / "db" / NAME).write_bytes(b"finished")
    (root / "db" / "notes.partial").write_bytes(b"not ours")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f"{NAME}.partial").write_bytes(b"not under a root")
    (root / "link").symlink_to(outside)
    feature = BackupDirFeature((str(root),))
    running = asyncio.get_running_loop().create_task(feature.run())

    async def swept() -> bool:
        return not (root / "db" / f"{NAME}.partial").exists()

    await eventually(swept, timeout=5, what="the partial file removed")
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert sorted(p.name for p in (root / "db").iterdir()) == [NAME, "notes.partial"]
    assert (outside / f"{NAME}.partial").exists()
