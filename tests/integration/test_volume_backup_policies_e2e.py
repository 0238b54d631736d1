"""Volume backup policies end to end: a real agent runs a busybox app writing into a Docker
named volume; a policy set through ``berth volumes policy set`` (keep the newest one) is made
due, the coordinator's own policy loop takes a backup through the agent, the volume changes,
the next due run takes another, and retention prunes the older backup with its artifact. The
kept artifact decrypts to a tar archive of the volume as it was at the second run."""

import tarfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import pytest

from coordinator.backups.artifacts import load_key, read_chunks
from coordinator.db.volume_policy_models import StorageVolumeBackupPolicy
from tests.harness import Coordinator, eventually, serving
from tests.integration.backup_stacks import WRITER, _leftovers, _sh, written_volume
from tests.integration.stacks import Workload, workload
from tests.integration.test_cli_workspace import Cli
from tests.unit.coordinator.support import assert_error, audit_events

pytestmark = pytest.mark.docker


@pytest.fixture
async def quick(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """A coordinator whose backups loop looks for due policies every half second."""
    async with serving(
        tmp_path / "coordinator", database_url, ws_ping_seconds=5.0, backup_policy_poll_seconds=0.5
    ) as harness:
        yield harness


async def _due(policy_id: str) -> None:
    """Move the policy's next run into the past (instead of waiting an hour)."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert await StorageVolumeBackupPolicy.filter(id=policy_id).update(next_run_at=past) == 1


async def _next_backup(stack: Workload, policy_id: str, after: str | None) -> dict[str, Any]:
    """The backup the policy's next run took, once it is ready."""

    async def taken() -> bool:
        policy = (await stack.call("GET", f"/storage-volumes/backup-policies/{policy_id}"))[
            "policy"
        ]
        if policy["lastBackupId"] in (None, after):
            return False
        shown = await stack.call("GET", f"/storage-volumes/backups/{policy['lastBackupId']}")
        assert shown["backup"]["status"] in ("pending", "ready"), shown
        return bool(shown["backup"]["status"] == "ready")

    await eventually(taken, timeout=120, what="the policy's backup to be ready")
    policy = (await stack.call("GET", f"/storage-volumes/backup-policies/{policy_id}"))["policy"]
    shown = await stack.call("GET", f"/storage-volumes/backups/{policy['lastBackupId']}")
    return dict(shown["backup"])


async def test_a_due_volume_policy_backs_up_and_prunes_the_older_backup(
    quick: Coordinator, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    token = await quick.bootstrap()
    stack = await workload(quick, token, tmp_path / "agent", WRITER)
    try:
        await _scenario(stack, quick, docker_client, tmp_path / "config")
    finally:
        await stack.agent.stop()


async def _scenario(
    stack: Workload, coordinator: Coordinator, client: docker.DockerClient, config_home: Path
) -> None:
    volume_id, _ = await written_volume(stack, client)

    cli = Cli(coordinator, stack.token, config_home)
    configured = await cli.json(
        "volumes", "policy", "set", "data", "--every", "24", "--keep-days", "7", "--keep", "1"
    )
    policy = configured["policy"]
    assert policy["schemaVersion"] == "storage-volume-backup-policies.policy/v1"
    assert (policy["storageVolumeId"], policy["keepCount"], policy["lastBackupId"]) == (
        volume_id,
        1,
        None,
    )
    listing = await cli.ok("volumes", "policy", "list")
    assert policy["id"] in listing

    await _due(policy["id"])
    first = await _next_backup(stack, policy["id"], None)
    assert (first["storageVolumeId"], first["serverId"]) == (volume_id, stack.server_id)
    shown = (await stack.call("GET", f"/storage-volumes/backup-policies/{policy['id']}"))["policy"]
    assert datetime.fromisoformat(shown["nextRunAt"]) > datetime.now(UTC) + timedelta(hours=23)

    _sh(client, volume_id, "echo second > /v/a.txt && echo new > /v/c.txt")
    await _due(policy["id"])
    second = await _next_backup(stack, policy["id"], first["id"])

    # keepCount 1: the loop prunes the older backup, its artifact first.
    data_dir = coordinator.settings().data_dir

    async def pruned() -> bool:
        status, _, _ = await coordinator.call(
            "GET", f"/storage-volumes/backups/{first['id']}", token=stack.token
        )
        return status == 404

    await eventually(pruned, timeout=30, what="retention to prune the older backup")
    assert not (data_dir / "backups" / f"{first['id']}.berthbk").exists()
    listed = await stack.call("GET", f"/storage-volumes/{volume_id}/backups")
    assert [b["id"] for b in listed["items"]] == [second["id"]]
    assert_error(
        await coordinator.call("GET", f"/storage-volumes/backups/{first['id']}", token=stack.token),
        404,
        "not_found",
    )

    # The kept artifact holds the volume as it was at the second run.
    artifact = data_dir / "backups" / f"{second['id']}.berthbk"
    key = load_key(data_dir / "backup.key")
    plain = data_dir / "plain.tar"
    plain.write_bytes(b"".join(read_chunks(artifact, key, second["id"], second["sha256"])))
    with tarfile.open(plain) as archive:
        assert {"./a.txt", "./c.txt", "./notes/b.txt"} <= set(archive.getnames())
        member = archive.extractfile("./a.txt")
        assert member is not None
        assert member.read() == b"second\n"

    events = await audit_events(coordinator, stack.token, aggregateId=volume_id)
    kinds = [e["eventType"] for e in events]
    assert kinds.count("storage-volume.backup-policy-configured") == 1
    requested = [e for e in events if e["eventType"] == "storage-volume.backup-requested"]
    assert [e["payload"]["policyId"] for e in requested] == [policy["id"], policy["id"]]
    [prune] = [e for e in events if e["eventType"] == "storage-volume.backup-pruned"]
    assert prune["payload"]["backupId"] == first["id"]
    assert _leftovers(client) == []
