"""The server-directory store on the coordinator, against an agent double that keeps files in
memory: only ciphertext travels, one frame of at most MAX_CHUNK_BYTES at a time, the artifact
exists only after ``finish``, reads decrypt and check, damage and refusals surface. The real
agent and a real directory: tests/unit/agent/test_backup_dirs.py and
tests/integration/test_dir_target_e2e.py."""

import base64
import os
from collections.abc import Callable
from typing import Any

import pytest

from coordinator.backups.artifacts import ArtifactDamaged
from coordinator.backups.dir_target import DirectoryFailed, ServerDirectoryStore
from shared.errors import Unavailable
from shared.messages import MAX_CHUNK_BYTES
from shared.messages.backup_dirs import (
    BackupDirAbort,
    BackupDirDelete,
    BackupDirFinish,
    BackupDirOpen,
    BackupDirRead,
    BackupDirReply,
    BackupDirStat,
    BackupDirWrite,
)

KEY = bytes(range(32))
PATH = "/srv/berth-backups/db"


class AgentDouble:
    """Answers ``backup_dir_*`` like the agent: ``.partial`` until finish, refusals on demand."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.open: dict[str, tuple[str, str, bytearray | int]] = {}
        self.frames: list[Any] = []
        self.refuse = ""
        # An agent before the transfer window: one frame at a time (the window has its own
        # tests, tests/unit/test_backup_dirs_window.py).
        self.capabilities: frozenset[str] = frozenset()

    async def request(self, build: Callable[[int], Any], timeout: float) -> BackupDirReply:
        message = build(len(self.frames) + 1)
        self.frames.append(message)
        reply = BackupDirReply(id=0, re=message.id, status="ok")
        if self.refuse:
            return reply.model_copy(update={"status": "failed", "message": self.refuse})
        match message:
            case BackupDirOpen(mode="write"):
                self.open[message.transfer_id] = ("write", message.file_name, bytearray())
            case BackupDirOpen(mode="read"):
                if message.file_name not in self.files:
                    return reply.model_copy(update={"status": "failed", "message": "missing"})
                self.open[message.transfer_id] = ("read", message.file_name, 0)
            case BackupDirWrite():
                data = base64.b64decode(message.data)
                assert len(data) <= MAX_CHUNK_BYTES
                buffer = self.open[message.transfer_id][2]
                assert isinstance(buffer, bytearray)
                buffer += data
            case BackupDirFinish():
                _, name, buffer = self.open.pop(message.transfer_id)
                assert isinstance(buffer, bytearray)
                self.files[name] = bytes(buffer)
            case BackupDirRead():
                mode, name, at = self.open[message.transfer_id]
                assert isinstance(at, int)
                chunk = self.files[name][at : at + MAX_CHUNK_BYTES]
                self.open[message.transfer_id] = (mode, name, at + len(chunk))
                encoded = base64.b64encode(chunk).decode()
                return reply.model_copy(update={"data": encoded, "eof": not chunk})
            case BackupDirAbort():
                self.open.pop(message.transfer_id, None)
            case BackupDirDelete():
                self.files.pop(message.file_name, None)
            case BackupDirStat():
                return reply.model_copy(update={"exists": message.file_name in self.files})
        return reply


class Registry:
    def __init__(self, agent: AgentDouble | None) -> None:
        self.agent = agent

    def require(self, server_id: str) -> Any:
        if self.agent is None:
            raise Unavailable("the server's agent is not connected")
        return self.agent


def _store(agent: AgentDouble | None) -> ServerDirectoryStore:
    return ServerDirectoryStore(Registry(agent), "srv_one", PATH, KEY)  # type: ignore[arg-type]


async def _write(store: ServerDirectoryStore, backup_id: str, plain: bytes) -> str:
    sink = await store.open_writer(backup_id)
    for at in range(0, len(plain), MAX_CHUNK_BYTES):
        await sink.add(plain[at : at + MAX_CHUNK_BYTES])
    return await sink.finish()


async def test_an_artifact_round_trips_as_ciphertext_in_full_frames() -> None:
    agent = AgentDouble()
    store = _store(agent)
    plain = b"COPY rows FROM stdin;\n" * 60_000  # ~1.3 MiB, several frames
    assert not await store.exists("bkp_1")
    sha256 = await _write(store, "bkp_1", plain)
    assert await store.exists("bkp_1")
    stored = agent.files["bkp_1.berthbk"]
    assert b"COPY rows" not in stored
    writes = [f for f in agent.frames if isinstance(f, BackupDirWrite)]
    # Every frame but the last is full: one chunk in flight, no tiny frames.
    assert all(len(base64.b64decode(f.data)) == MAX_CHUNK_BYTES for f in writes[:-1])
    assert store.handle("bkp_1") == f"server-directory://srv_one{PATH}/bkp_1.berthbk"
    got = b"".join([chunk async for chunk in store.read("bkp_1", sha256)])
    assert got == plain
    await store.delete("bkp_1")
    assert not await store.exists("bkp_1")


async def test_a_discarded_write_never_becomes_an_artifact() -> None:
    agent = AgentDouble()
    store = _store(agent)
    sink = await store.open_writer("bkp_2")
    await sink.add(os.urandom(MAX_CHUNK_BYTES * 2))
    await sink.discard()
    assert agent.files == {}
    assert agent.open == {}
    assert isinstance(agent.frames[-1], BackupDirAbort)


async def test_damage_refusals_and_an_offline_agent_are_errors() -> None:
    agent = AgentDouble()
    store = _store(agent)
    sha256 = await _write(store, "bkp_3", b"rows" * 1000)
    stored = bytearray(agent.files["bkp_3.berthbk"])
    stored[-5] ^= 1
    agent.files["bkp_3.berthbk"] = bytes(stored)
    with pytest.raises(ArtifactDamaged):
        _ = [chunk async for chunk in store.read("bkp_3", sha256)]
    agent.refuse = "backup directory /etc is outside this agent's backup directories"
    with pytest.raises(DirectoryFailed, match="outside this agent's backup directories"):
        await store.open_writer("bkp_4")
    with pytest.raises(Unavailable):
        await _store(None).open_writer("bkp_5")
