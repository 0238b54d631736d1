"""The transfer window end to end: a real agent (advertising ``backups.window.v1`` and
``backup-dirs.window.v1``) and the local PostgreSQL image; a dump several windows long is
backed up to the coordinator's storage and to a directory on the server, the table dropped and
restored from each, every row back byte for byte (chunks in flight in order both ways)."""

from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest

from coordinator.backups.window import WINDOW
from shared.messages import MAX_CHUNK_BYTES
from shared.messages.backup_dirs import BACKUP_DIRS_WINDOW_CAPABILITY
from shared.messages.backups import BACKUP_WINDOW_CAPABILITY
from tests.harness import Coordinator
from tests.integration import backup_stacks as bk

pytestmark = pytest.mark.docker

# ~100 bytes of random hex a row: a -Fc dump of several MiB, more than two windows of chunks.
ROWS = 120_000
FILL = (
    "create table items (n int primary key, label text);"
    "insert into items select g, md5(random()::text) || md5(random()::text)"
    " || md5(random()::text) from generate_series(1, 120000) g"
)
FINGERPRINT = "select count(*) || ':' || md5(string_agg(label, ',' order by n)) from items"


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    async with bk.db_coordinator(tmp_path, database_url, "postgres") as harness:
        yield harness


async def test_a_dump_several_windows_long_restores_byte_for_byte_from_each_target(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    allowed = (tmp_path / "allowed").resolve()
    allowed.mkdir()
    async with bk.agent_stack(
        coordinator,
        admin_token,
        tmp_path,
        docker_client,
        agent_env={"BERTH_AGENT_BACKUP_DIRS": str(allowed)},
    ) as stack:
        session = coordinator.registry.get(stack.server_id)
        assert session is not None
        assert {BACKUP_WINDOW_CAPABILITY, BACKUP_DIRS_WINDOW_CAPABILITY} <= session.capabilities

        db = await bk.provision(stack, "Main DB")
        bk.psql(docker_client, db, FILL)
        before = bk.psql(docker_client, db, FINGERPRINT)
        assert before.startswith(f"{ROWS}:")

        stored = await bk.backup(stack, db)
        assert stored["sizeBytes"] > 2 * WINDOW * MAX_CHUNK_BYTES, stored
        target = await stack.call(
            "POST",
            "/backup-targets",
            {
                "name": "server dir",
                "kind": "server-directory",
                "serverId": stack.server_id,
                "path": str(allowed),
            },
        )
        created = await stack.call(
            "POST", f"/dependency-resources/{db}/backups", {"backupTargetId": target["id"]}
        )
        in_dir = await bk.settled(stack, created["id"], "ready")
        artifact = allowed / f"{in_dir['id']}.berthbk"
        assert artifact.stat().st_size == in_dir["sizeBytes"]
        assert in_dir["sha256"] != stored["sha256"]  # each its own nonces, same dump

        for backup in (stored, in_dir):
            bk.psql(docker_client, db, "drop table items")
            attempt = await bk.restore(stack, backup["id"], "ready")
            assert attempt["failureCode"] is None, attempt
            assert bk.psql(docker_client, db, FINGERPRINT) == before
