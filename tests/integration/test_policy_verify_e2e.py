"""A volume backup policy with ``verifyAfterBackup`` end to end: a real agent deploys a busybox
app writing files into a Docker named volume; a policy set through ``berth volumes policy set
--verify`` is made due, the coordinator's own policy loop takes a backup through the agent and,
once it is ready, verifies it (restored into a throwaway volume on the server and counted there):
the backup ends with verification ``passed``, audited with the policy's id. The volume itself is
untouched and no throwaway volume or helper container is left. The same for a database policy
on a real PostgreSQL database: its scheduled backup is restored into a throwaway database and
its 5000 rows counted."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import pytest

from coordinator.db.backup_models import DependencyBackupPolicy
from tests.harness import Coordinator, eventually, serving
from tests.integration import backup_stacks as bk
from tests.integration.backup_stacks import WRITER, _files, _leftovers
from tests.integration.stacks import Workload, workload
from tests.integration.test_cli_workspace import Cli
from tests.integration.test_volume_backup_policies_e2e import _due, _next_backup
from tests.integration.test_volume_backup_verification_e2e import FILE_BYTES
from tests.unit.coordinator.support import audit_events

pytestmark = pytest.mark.docker


@pytest.fixture
async def quick(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """A coordinator whose backups loop looks for due policies every half second."""
    async with serving(
        tmp_path / "coordinator", database_url, ws_ping_seconds=5.0, backup_policy_poll_seconds=0.5
    ) as harness:
        yield harness


@pytest.fixture
async def dbs(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """A coordinator running the local PostgreSQL image whose policy loop looks every half
    second."""
    async with bk.db_coordinator(
        tmp_path, database_url, "postgres", backup_policy_poll_seconds=0.5
    ) as harness:
        yield harness


async def test_a_due_volume_policy_with_verify_after_backup_verifies_its_backup(
    quick: Coordinator, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    token = await quick.bootstrap()
    stack = await workload(quick, token, tmp_path / "agent", WRITER)
    try:
        await _scenario(stack, quick, docker_client, tmp_path / "config")
    finally:
        await stack.agent.stop()


async def _verification(stack: Workload, backup_id: str) -> dict[str, Any]:
    """The backup's verification once the loop's check of it has ended."""

    async def done() -> bool:
        shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
        verification = shown["backup"]["verification"]
        if verification is None:  # the loop has not looked since the backup became ready
            return False
        assert verification["status"] in ("pending", "passed"), verification
        return bool(verification["status"] == "passed")

    await eventually(done, timeout=120, what="the policy's verification to pass")
    shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
    return dict(shown["backup"]["verification"])


async def _scenario(
    stack: Workload, coordinator: Coordinator, client: docker.DockerClient, config_home: Path
) -> None:
    volume_id, original = await bk.written_volume(stack, client)

    cli = Cli(coordinator, stack.token, config_home)
    configured = await cli.json(
        "volumes", "policy", "set", "data", "--every", "24", "--keep-days", "7", "--verify"
    )
    policy = configured["policy"]
    assert (policy["storageVolumeId"], policy["verifyAfterBackup"]) == (volume_id, True)
    assert "Verify after backup" in await cli.ok("volumes", "policy", "show", policy["id"])

    await _due(policy["id"])
    backup = await _next_backup(stack, policy["id"], None)
    verification = await _verification(stack, backup["id"])
    assert (verification["files"], verification["fileBytes"]) == (2, FILE_BYTES)
    assert verification["message"].endswith("matches the backup's manifest"), verification
    assert verification["checkedAt"] is not None
    assert _files(client, volume_id) == original

    events = await audit_events(coordinator, stack.token, aggregateId=volume_id)
    [asked] = [
        e for e in events if e["eventType"] == "storage-volume.backup-verification-requested"
    ]
    assert asked["actorKind"] == "system"
    assert asked["payload"]["policyId"] == policy["id"]
    assert asked["payload"]["backupId"] == backup["id"]

    # The backup's helper may still be going when the verification starts: all go, soon.
    async def cleaned() -> bool:
        return _leftovers(client) == []

    await eventually(cleaned, timeout=30, what="the backup's and verification's helpers to go")


async def test_a_due_database_policy_with_verify_after_backup_verifies_its_backup(
    dbs: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    async with bk.agent_stack(dbs, admin_token, tmp_path, docker_client) as stack:
        db = await bk.filled_postgres(stack, docker_client, "Main DB")
        configured = await stack.call(
            "POST",
            "/dependency-resources/backup-policies",
            {
                "dependencyResourceId": db,
                "scheduleIntervalHours": 24,
                "retentionDays": 7,
                "verifyAfterBackup": True,
            },
        )
        path = f"/dependency-resources/backup-policies/{configured['id']}"
        assert (await stack.call("GET", path))["policy"]["verifyAfterBackup"] is True
        past = datetime.now(UTC) - timedelta(seconds=1)
        await DependencyBackupPolicy.filter(id=configured["id"]).update(next_run_at=past)

        async def taken() -> bool:
            return (await stack.call("GET", path))["policy"]["lastBackupId"] is not None

        await eventually(taken, timeout=60, what="the policy's run to take a backup")
        backup_id = (await stack.call("GET", path))["policy"]["lastBackupId"]
        backup = await bk.settled(stack, backup_id, "ready")
        assert backup["dependencyResourceId"] == db

        async def verified() -> bool:
            verification = (await bk.shown_backup(stack, backup_id))["verification"]
            if verification is None:  # the loop has not looked since the backup became ready
                return False
            assert verification["status"] in ("pending", "passed"), verification
            return bool(verification["status"] == "passed")

        await eventually(verified, timeout=180, what="the policy's verification to pass")
        verification = (await bk.shown_backup(stack, backup_id))["verification"]
        assert (verification["tables"], verification["rows"]) == (1, bk.ROWS), verification
        events = await audit_events(dbs, stack.token, aggregateId=db)
        event = "dependency-resource.backup-verification-requested"
        [asked] = [e for e in events if e["eventType"] == event]
        assert asked["actorKind"] == "system"
        assert asked["payload"]["policyId"] == configured["id"]
