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
from coordinator.backups.policies import prune
from coordinator.db.backup_models import DependencyBackupPolicy
from tests.harness import Coordinator, eventually
from tests.integration import backup_stacks as bk
from tests.integration.backup_stacks import WRITER
from tests.integration.stacks import Workload, start_agent
from tests.integration.test_cli_workspace import Cli
from tests.unit.coordinator.support import assert_error, audit_events

pytestmark = pytest.mark.docker


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    async with bk.db_coordinator(tmp_path, database_url, "postgres") as harness:
        yield harness


def _allowed(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A directory the agent may keep backups in, and the agent environment allowing it."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    allowed = allowed.resolve()
    return allowed, {"BERTH_AGENT_BACKUP_DIRS": str(allowed)}


async def test_postgres_backup_to_a_server_directory_restores_dropped_rows(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    allowed, env = _allowed(tmp_path)
    async with bk.agent_stack(
        coordinator, admin_token, tmp_path, docker_client, agent_env=env
    ) as stack:
        db = await _scenario(stack, coordinator, docker_client, allowed, tmp_path)
        await _cli(stack, coordinator, allowed, tmp_path)
        await _offline(stack, coordinator, db, tmp_path)


async def _scenario(
    stack: Workload,
    coordinator: Coordinator,
    client: docker.DockerClient,
    allowed: Path,
    tmp_path: Path,
) -> str:
    db = await bk.filled_postgres(stack, client, "Main DB")
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
    target = await bk.add_dir_target(stack, "local", directory)
    shown = await stack.call("GET", f"/backup-targets/{target}")
    assert (shown["kind"], shown["serverId"], shown["path"]) == (
        "server-directory",
        stack.server_id,
        str(directory),
    )
    backup = await bk.backup_to(stack, db, target)
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
    bk.assert_ciphertext_only(coordinator, backup, stored)

    # Drop the table, restore from the server's directory: the rows are back; verification
    # reads it from the directory into a throwaway database.
    await bk.restores_dropped_rows_and_verifies(stack, client, db, str(backup["id"]))
    events = await audit_events(coordinator, stack.token)
    [added] = [e for e in events if e["eventType"] == "backup-target.created"]
    assert added["payload"]["path"] == str(directory)

    # A target the agent accepted, then a symbolic link swapped in under the allowed root: the
    # agent refuses at the first write, the backup fails with the reason, nothing is written.
    swapped = allowed / "swapped"
    swapped.mkdir()
    later = await bk.add_dir_target(stack, "swapped", swapped)
    swapped.rmdir()
    swapped.symlink_to(outside)
    failed = await bk.backup_to(stack, db, later)
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
    allowed, env = _allowed(tmp_path)
    async with bk.agent_stack(
        coordinator, admin_token, tmp_path, docker_client, WRITER, agent_env=env
    ) as stack:
        volume_id, original = await bk.written_volume(stack, docker_client)
        target = await bk.add_dir_target(stack, "local", allowed / "volumes")
        backup = await bk.volume_backup_to(stack, volume_id, target)
        assert backup["target"] == "server-directory"
        stored = (allowed / "volumes" / f"{backup['id']}.berthbk").read_bytes()
        assert len(stored) == backup["sizeBytes"]
        assert b"19999\n20000" not in stored  # the archive's file content is not in clear
        await bk.restores_deleted_files(
            stack, docker_client, volume_id, str(backup["id"]), original
        )


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
        created = await bk.add_dir_target(stack, "node-2", allowed, server_id)
    finally:
        await agent.stop()

    async def offline() -> bool:
        return await coordinator.agent_status(stack.token, server_id) != "online"

    await eventually(offline, what="node-2 offline")
    failed = await bk.backup_to(stack, db, created)
    assert failed["status"] == "failed", failed
    assert failed["failureCode"] == "unavailable"
    assert "not connected" in str(failed["failureMessage"])
    assert list(allowed.iterdir()) == []
