"""Backups into a directory on the server end to end: a real agent (allowed one directory by
``BERTH_AGENT_BACKUP_DIRS``) runs the local PostgreSQL image; rows are backed up into that
directory (encrypted on the coordinator, written by the agent, renamed into place at the end),
the table dropped, restored from the directory, rows back, a verification passes; the file is
ciphertext that only the operator's key opens; a path outside the allowed directories is
refused when the target is added, a symbolic link swapped in later fails the backup with the
reason and writes nothing outside; pruning removes the file; the CLI's ``add-dir`` works the
same; a directory whose agent is offline fails the backup ``unavailable``; a volume backup goes
there and restores the same way."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import pytest

from coordinator.backups import RUNNER_KEY
from coordinator.backups.artifacts import ArtifactDamaged, Opener, load_key
from coordinator.backups.policies import prune
from coordinator.db.backup_models import DependencyBackupPolicy
from tests.db_images import db_images
from tests.harness import Coordinator, eventually
from tests.integration.stacks import Workload, start_agent, workload
from tests.integration.test_backup_targets_e2e import _settled
from tests.integration.test_backups_e2e import (
    _cleanup,
    _count,
    _provision,
    _psql,
    _restore,
    _verify,
)
from tests.integration.test_cli_workspace import Cli
from tests.integration.test_volume_backups_e2e import (
    WRITER,
    _files,
    _restored,
    _settled as _volume_settled,
    _sh,
    _volume,
)
from tests.unit.coordinator.support import assert_error, audit_events

pytestmark = pytest.mark.docker


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


async def _add_dir(stack: Workload, name: str, path: Path | str) -> str:
    created = await stack.call(
        "POST",
        "/backup-targets",
        {"name": name, "kind": "server-directory", "serverId": stack.server_id, "path": str(path)},
    )
    return str(created["id"])


async def test_postgres_backup_to_a_server_directory_restores_dropped_rows(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    allowed = allowed.resolve()
    env = {"BERTH_AGENT_BACKUP_DIRS": str(allowed)}
    stack = await workload(
        coordinator, admin_token, tmp_path / "agent", "sleep 3600", agent_env=env
    )
    try:
        db = await _scenario(stack, coordinator, docker_client, allowed, tmp_path)
        await _cli(stack, coordinator, allowed, tmp_path)
        await _offline(stack, coordinator, db, tmp_path)
    finally:
        await stack.agent.stop()
        _cleanup(docker_client)


async def _scenario(
    stack: Workload,
    coordinator: Coordinator,
    client: docker.DockerClient,
    allowed: Path,
    tmp_path: Path,
) -> str:
    db = await _provision(stack, "Main DB")
    _psql(
        client,
        db,
        "create table items (n int primary key, label text);"
        "insert into items select g, md5(g::text) from generate_series(1, 5000) g",
    )
    # Outside the agent's allowed directories: a 403 naming them, nothing stored or written.
    outside = tmp_path / "outside"
    outside.mkdir()
    for path in ("/etc/berth", str(outside), f"{allowed}-sibling"):
        error = assert_error(
            await coordinator.call(
                "POST",
                "/backup-targets",
                token=stack.token,
                json={
                    "name": "bad",
                    "kind": "server-directory",
                    "serverId": stack.server_id,
                    "path": path,
                },
            ),
            403,
            "forbidden",
        )
        assert "outside this agent's backup directories" in error["message"], error
        assert error["details"]["allowedRoots"] == [str(allowed)]
    listed = await stack.call("GET", "/backup-targets")
    assert listed["items"] == []

    directory = allowed / "prod" / "db"
    target = await _add_dir(stack, "local", directory)
    shown = await stack.call("GET", f"/backup-targets/{target}")
    assert (shown["kind"], shown["serverId"], shown["path"]) == (
        "server-directory",
        stack.server_id,
        str(directory),
    )
    created = await stack.call(
        "POST", f"/dependency-resources/{db}/backups", {"backupTargetId": target}
    )
    backup = await _settled(stack, created["id"])
    assert backup["status"] == "ready", backup
    assert backup["target"] == "server-directory"
    name = f"{backup['id']}.berthbk"
    assert backup["providerArtifactHandle"] == (
        f"server-directory://{stack.server_id}{directory}/{name}"
    )

    # The directory holds the finished artifact only (no partial file), as ciphertext; the
    # coordinator's storage holds nothing of it.
    assert sorted(p.name for p in directory.iterdir()) == [name]
    stored = (directory / name).read_bytes()
    assert len(stored) == backup["sizeBytes"]
    assert stored.startswith(b"BERTHBK1")
    assert b"PGDMP" not in stored
    assert b"md5" not in stored
    data_dir = coordinator.settings().data_dir
    assert not list((data_dir / "backups").glob(f"{backup['id']}*"))
    key = load_key(data_dir / "backup.key")
    opener = Opener(key, str(backup["id"]), str(backup["sha256"]))
    plain = b"".join(opener.feed(stored))
    opener.end()
    assert plain.startswith(b"PGDMP")
    with pytest.raises(ArtifactDamaged):
        Opener(bytes(32), str(backup["id"]), str(backup["sha256"])).feed(stored)

    # Drop the table, restore from the server's directory: the rows are back.
    _psql(client, db, "drop table items")
    attempt = await _restore(stack, str(backup["id"]), "ready")
    assert attempt["failureCode"] is None
    assert _count(client, db) == 5000
    # Verification reads it from the directory into a throwaway database.
    verification = await _verify(stack, str(backup["id"]), "passed")
    assert verification["rows"] == 5000
    events = await audit_events(coordinator, stack.token)
    [added] = [e for e in events if e["eventType"] == "backup-target.created"]
    assert added["payload"]["path"] == str(directory)

    # A target the agent accepted, then a symbolic link swapped in under the allowed root: the
    # agent refuses at the first write, the backup fails with the reason, nothing is written.
    swapped = allowed / "swapped"
    swapped.mkdir()
    later = await _add_dir(stack, "swapped", swapped)
    swapped.rmdir()
    swapped.symlink_to(outside)
    created = await stack.call(
        "POST", f"/dependency-resources/{db}/backups", {"backupTargetId": later}
    )
    failed = await _settled(stack, created["id"])
    assert failed["status"] == "failed", failed
    assert failed["failureCode"] == "runtime_failed"
    assert "symbolic link" in str(failed["failureMessage"])
    assert list(outside.iterdir()) == []

    # Retention prunes the artifact through the agent: the file is gone (the failed backup's
    # target now refuses the agent, so that row waits for the next pass).
    policy = DependencyBackupPolicy(
        dependency_resource_id=db, retention_days=1, keep_count=None, backup_target_id=target
    )
    runner = coordinator.app[RUNNER_KEY]
    removed = await prune(runner, policy, datetime.now(UTC) + timedelta(days=30))
    assert removed == 1
    assert list(directory.iterdir()) == []
    return db


async def _cli(stack: Workload, coordinator: Coordinator, allowed: Path, tmp_path: Path) -> None:
    """``berth backup-targets add-dir``, then ``berth db backup --target NAME`` lands there."""
    cli = Cli(coordinator, stack.token, tmp_path / "config")
    added = await cli.json(
        "backup-targets", "add-dir", "cli-dir", "--server", stack.server_id,
        "--path", str(allowed / "cli"),
    )  # fmt: skip
    assert added["kind"] == "server-directory"
    listing = await cli.ok("backup-targets", "list")
    assert "cli-dir" in listing
    listed = await cli.json("backup-targets", "list")
    [shown] = [t for t in listed["items"] if t["name"] == "cli-dir"]
    assert (shown["serverId"], shown["path"]) == (stack.server_id, str(allowed / "cli"))
    refused = await cli(
        "backup-targets", "add-dir", "x", "--server", stack.server_id, "--path", "/etc"
    )
    assert refused.exit_code != 0
    assert "outside this agent's backup directories" in refused.output
    taken = await cli.json("db", "backup", "Main DB", "--target", "cli-dir")
    assert taken["backup"]["status"] == "ready", taken
    assert (allowed / "cli" / f"{taken['backup']['id']}.berthbk").is_file()


async def test_volume_backup_to_a_server_directory_restores_deleted_files(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    allowed = allowed.resolve()
    env = {"BERTH_AGENT_BACKUP_DIRS": str(allowed)}
    stack = await workload(coordinator, admin_token, tmp_path / "agent", WRITER, agent_env=env)
    try:
        volume_id = await _volume(stack, "data")
        await stack.call(
            "POST",
            f"/resources/{stack.resource_id}/storage-attachments",
            {"storageVolumeId": volume_id, "destinationPath": "/data"},
        )
        await stack.deploy()

        async def written() -> bool:
            return len(_files(docker_client, volume_id)) == 2

        await eventually(written, timeout=30, what="the app to write its files")
        original = _files(docker_client, volume_id)
        target = await _add_dir(stack, "local", allowed / "volumes")
        created = await stack.call(
            "POST", f"/storage-volumes/{volume_id}/backups", {"backupTargetId": target}
        )
        backup = await _volume_settled(stack, created["id"])
        assert backup["target"] == "server-directory"
        stored = (allowed / "volumes" / f"{backup['id']}.berthbk").read_bytes()
        assert len(stored) == backup["sizeBytes"]
        assert b"19999\n20000" not in stored  # the archive's file content is not in clear

        _sh(docker_client, volume_id, "rm -rf /v/notes && echo changed > /v/a.txt")
        attempt = await _restored(stack, str(backup["id"]), {})
        assert attempt["status"] == "ready", attempt
        assert _files(docker_client, volume_id) == original
    finally:
        await stack.agent.stop()
        _cleanup(docker_client)


async def _offline(stack: Workload, coordinator: Coordinator, db: str, tmp_path: Path) -> None:
    """A directory on a second server whose agent then stops: the backup fails
    ``unavailable`` with the reason, nothing is written or marked ready."""
    allowed = (tmp_path / "node-2").resolve()
    allowed.mkdir()
    env = {"BERTH_AGENT_BACKUP_DIRS": str(allowed)}
    agent, server_id = await start_agent(
        coordinator, stack.token, tmp_path / "agent-2", name="node-2", env=env
    )
    try:
        created = await stack.call(
            "POST",
            "/backup-targets",
            {
                "name": "node-2",
                "kind": "server-directory",
                "serverId": server_id,
                "path": str(allowed),
            },
        )
    finally:
        await agent.stop()

    async def offline() -> bool:
        return await coordinator.agent_status(stack.token, server_id) != "online"

    await eventually(offline, what="node-2 offline")
    taken = await stack.call(
        "POST", f"/dependency-resources/{db}/backups", {"backupTargetId": created["id"]}
    )
    failed = await _settled(stack, taken["id"])
    assert failed["status"] == "failed", failed
    assert failed["failureCode"] == "unavailable"
    assert "not connected" in str(failed["failureMessage"])
    assert list(allowed.iterdir()) == []
