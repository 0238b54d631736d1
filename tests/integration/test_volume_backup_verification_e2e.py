"""Verifying storage-volume backups end to end: a real agent deploys a busybox app writing files
into a Docker named volume; the backup records what the archive held (counted by the agent as it
streamed); a verification restores the artifact into a throwaway volume on the server, counts it
there and passes; a backup whose artifact has flipped bytes, or whose count differs from the
recorded one, fails with the reason; the same with the artifact in a server-directory target.
The volume itself is never touched, and no throwaway volume or helper container is left."""

from pathlib import Path
from typing import Any

import docker
import pytest

from coordinator.db.volume_backup_models import StorageVolumeBackup
from tests.harness import Coordinator, eventually
from tests.integration.backup_stacks import (
    WRITER,
    _files,
    _leftovers,
    add_dir_target,
    volume_backup,
    volume_backup_to,
    written_volume,
)
from tests.integration.stacks import Workload, workload
from tests.integration.test_cli_workspace import Cli
from tests.unit.coordinator.support import audit_events

pytestmark = pytest.mark.docker

FILE_BYTES = len("first\n") + sum(len(f"{n}\n") for n in range(1, 20001))


async def _verify(stack: Workload, backup_id: str, want: str) -> dict[str, Any]:
    answer = await stack.call("POST", f"/storage-volumes/backups/{backup_id}/verify", {})
    assert answer["id"] == backup_id

    async def done() -> bool:
        shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
        verification = shown["backup"]["verification"]
        assert verification["status"] in ("pending", want), verification
        return bool(verification["status"] == want)

    await eventually(done, timeout=120, what=f"the verification of {backup_id} to be {want}")
    shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
    return dict(shown["backup"]["verification"])


async def test_volume_backup_verification_passes_and_fails_on_damage(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", WRITER)
    try:
        await _scenario(stack, coordinator, docker_client, tmp_path / "config")
    finally:
        await stack.agent.stop()


async def _scenario(
    stack: Workload, coordinator: Coordinator, client: docker.DockerClient, config_home: Path
) -> None:
    volume_id, original = await written_volume(stack, client)

    # The backup records what its archive held, counted by the agent as it streamed.
    backup = await volume_backup(stack, volume_id)
    manifest = backup["manifest"]
    assert (manifest["files"], manifest["fileBytes"]) == (2, FILE_BYTES), manifest
    assert manifest["entries"] == 4, manifest  # the root, a.txt, notes/ and notes/b.txt
    assert len(manifest["pathsSha256"]) == 64
    assert backup["verification"] is None

    # A verification restores it into a throwaway volume, counts it there: passed.
    verification = await _verify(stack, backup["id"], "passed")
    assert (verification["files"], verification["fileBytes"]) == (2, FILE_BYTES)
    assert verification["message"].endswith("matches the backup's manifest"), verification
    assert verification["checkedAt"] is not None
    assert verification["requestedAt"] is not None
    assert _files(client, volume_id) == original
    assert _leftovers(client) == []

    # A recorded count that differs from what the artifact restores fails, naming the difference.
    await StorageVolumeBackup.filter(id=backup["id"]).update(manifest_files=3)
    verification = await _verify(stack, backup["id"], "failed")
    assert "files 2 where the backup recorded 3" in verification["message"], verification
    await StorageVolumeBackup.filter(id=backup["id"]).update(manifest_files=2)
    assert _leftovers(client) == []

    # Flipped bytes in the stored artifact: the AES-GCM record check fails the verification,
    # before anything is counted; the volume is untouched and nothing is left on the server.
    artifact = coordinator.settings().data_dir / "backups" / f"{backup['id']}.berthbk"
    raw = bytearray(artifact.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    artifact.write_bytes(bytes(raw))
    verification = await _verify(stack, backup["id"], "failed")
    assert verification["message"].startswith("artifact-damaged"), verification
    assert verification["files"] is None
    assert _files(client, volume_id) == original
    assert _leftovers(client) == []

    # Bad input changes nothing: unknown ids, another tenant's backup, a backup not ready.
    status, refused, _ = await coordinator.call(
        "POST", "/storage-volumes/backups/vbk_unknown/verify", token=stack.token, json={}
    )
    assert status == 404, refused
    assert set(refused["error"]) >= {"code", "message", "retriable", "details"}
    assert "requestId" in refused
    owner = (await StorageVolumeBackup.get(id=backup["id"])).organization_id
    await StorageVolumeBackup.filter(id=backup["id"]).update(organization_id="org_other")
    status, hidden, _ = await coordinator.call(
        "POST", f"/storage-volumes/backups/{backup['id']}/verify", token=stack.token, json={}
    )
    assert status == 404, hidden
    await StorageVolumeBackup.filter(id=backup["id"]).update(organization_id=owner, status="failed")
    status, conflict, _ = await coordinator.call(
        "POST", f"/storage-volumes/backups/{backup['id']}/verify", token=stack.token, json={}
    )
    assert status == 409, conflict
    row = await StorageVolumeBackup.get(id=backup["id"])
    assert row.verification_status == "failed"
    assert (row.verification_message or "").startswith("artifact-damaged")
    await StorageVolumeBackup.filter(id=backup["id"]).update(status="ready")

    events = [
        e["eventType"]
        for e in await audit_events(coordinator, stack.token, aggregateId=volume_id)
        if e["eventType"] == "storage-volume.backup-verification-requested"
    ]
    assert len(events) == 3

    # ``berth volumes verify`` on a fresh backup: waits for the outcome and shows it.
    fresh = await volume_backup(stack, volume_id)
    cli = Cli(coordinator, stack.token, config_home)
    shown = await cli.json("volumes", "verify", fresh["id"])
    assert shown["backup"]["verification"]["status"] == "passed", shown
    human = await cli.ok("volumes", "verify", fresh["id"])
    assert "matches the backup's manifest" in human
    assert _leftovers(client) == []


async def test_a_volume_backup_in_a_server_directory_verifies_and_fails_on_damage(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    """The artifact is read back from the server's directory (through its agent) the same way."""
    allowed = tmp_path / "backups"
    allowed.mkdir()
    env = {"BERTH_AGENT_BACKUP_DIRS": str(allowed)}
    stack = await workload(coordinator, admin_token, tmp_path / "agent", WRITER, agent_env=env)
    try:
        volume_id, _ = await written_volume(stack, docker_client)
        target_id = await add_dir_target(stack, "local", allowed / "volumes")
        backup = await volume_backup_to(stack, volume_id, target_id)
        assert backup["backupTargetId"] == target_id
        verification = await _verify(stack, backup["id"], "passed")
        assert (verification["files"], verification["fileBytes"]) == (2, FILE_BYTES)
        assert _leftovers(docker_client) == []

        stored = allowed / "volumes" / f"{backup['id']}.berthbk"
        raw = bytearray(stored.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        stored.write_bytes(bytes(raw))
        verification = await _verify(stack, backup["id"], "failed")
        assert verification["message"].startswith("artifact-damaged"), verification
        assert _leftovers(docker_client) == []
    finally:
        await stack.agent.stop()
