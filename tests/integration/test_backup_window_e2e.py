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
from tests.db_images import db_images
from tests.harness import Coordinator
from tests.integration.stacks import workload
from tests.integration.test_backups_e2e import (
    _backup,
    _cleanup,
    _provision,
    _psql,
    _restore,
    _settled,
)

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
    harness = Coordinator(
        tmp_path / "coordinator",
        database_url,
        ws_ping_seconds=5.0,
        dependency_image_postgres=db_images("postgres")["postgres"],
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


async def test_a_dump_several_windows_long_restores_byte_for_byte_from_each_target(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    allowed = (tmp_path / "allowed").resolve()
    allowed.mkdir()
    stack = await workload(
        coordinator,
        admin_token,
        tmp_path / "agent",
        "sleep 3600",
        agent_env={"BERTH_AGENT_BACKUP_DIRS": str(allowed)},
    )
    try:
        session = coordinator.registry.get(stack.server_id)
        assert session is not None
        assert {BACKUP_WINDOW_CAPABILITY, BACKUP_DIRS_WINDOW_CAPABILITY} <= session.capabilities

        db = await _provision(stack, "Main DB")
        _psql(docker_client, db, FILL)
        before = _psql(docker_client, db, FINGERPRINT)
        assert before.startswith(f"{ROWS}:")

        stored = await _backup(stack, db)
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
        in_dir = await _settled(stack, created["id"], "ready")
        artifact = allowed / f"{in_dir['id']}.berthbk"
        assert artifact.stat().st_size == in_dir["sizeBytes"]
        assert in_dir["sha256"] != stored["sha256"]  # each its own nonces, same dump

        for backup in (stored, in_dir):
            _psql(docker_client, db, "drop table items")
            attempt = await _restore(stack, backup["id"], "ready")
            assert attempt["failureCode"] is None, attempt
            assert _psql(docker_client, db, FINGERPRINT) == before
    finally:
        await stack.agent.stop()
        _cleanup(docker_client)
