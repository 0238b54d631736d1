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
from tests.integration.stacks import Workload, workload
from tests.integration.test_cli_workspace import Cli
from tests.unit.coordinator.support import audit_events

pytestmark = pytest.mark.docker

# Two files (one in a folder) written on the first start only; the app keeps running.
WRITER = (
    "[ -f /data/a.txt ] || { mkdir -p /data/notes && echo first > /data/a.txt"
    " && seq 1 20000 > /data/notes/b.txt; }; "
    "trap 'exit 0' TERM; sleep 100000 & wait"
)
FILE_BYTES = len("first\n") + sum(len(f"{n}\n") for n in range(1, 20001))


def _files(client: docker.DockerClient, volume_id: str) -> dict[str, str]:
    """Every file of the volume with its SHA-256 (read by a throwaway busybox container)."""
    out = client.containers.run(
        "berth-test/busybox",
        ["sh", "-c", "cd /v && find . -type f | sort | xargs -r sha256sum"],
        volumes={f"berth-{volume_id.lower()}": {"bind": "/v", "mode": "ro"}},
        remove=True,
    )
    assert isinstance(out, bytes)
    return {line.split()[1]: line.split()[0] for line in out.decode().splitlines()}


def _leftovers(client: docker.DockerClient) -> list[str]:
    """Helper containers and throwaway (staging) volumes of any restore or verification."""
    helpers = client.containers.list(all=True, filters={"label": "berth.volume-helper"})
    staging = [v.name for v in client.volumes.list() if str(v.name).startswith("berth-vrs-")]
    return [str(c.name) for c in helpers] + staging


async def _placed_volume(stack: Workload, client: docker.DockerClient) -> str:
    """A named volume the deployed app wrote its two files into."""
    created = await stack.call(
        "POST",
        "/storage-volumes",
        {
            "projectId": stack.project_id,
            "environmentId": stack.environment_id,
            "name": "data",
            "kind": "named-volume",
        },
    )
    volume_id = str(created["id"])
    await stack.call(
        "POST",
        f"/resources/{stack.resource_id}/storage-attachments",
        {"storageVolumeId": volume_id, "destinationPath": "/data"},
    )
    await stack.deploy()

    async def written() -> bool:
        return len(_files(client, volume_id)) == 2

    await eventually(written, timeout=30, what="the app to write its files")
    return volume_id


async def _ready(stack: Workload, volume_id: str, **body: str) -> dict[str, Any]:
    created = await stack.call("POST", f"/storage-volumes/{volume_id}/backups", body)

    async def settled() -> bool:
        shown = await stack.call("GET", f"/storage-volumes/backups/{created['id']}")
        assert shown["backup"]["status"] in ("pending", "ready"), shown
        return bool(shown["backup"]["status"] == "ready")

    await eventually(settled, timeout=120, what="the volume backup to be ready")
    shown = await stack.call("GET", f"/storage-volumes/backups/{created['id']}")
    return dict(shown["backup"])


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
    volume_id = await _placed_volume(stack, client)
    original = _files(client, volume_id)

    # The backup records what its archive held, counted by the agent as it streamed.
    backup = await _ready(stack, volume_id)
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
    fresh = await _ready(stack, volume_id)
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
        volume_id = await _placed_volume(stack, docker_client)
        target = await stack.call(
            "POST",
            "/backup-targets",
            {
                "name": "local",
                "kind": "server-directory",
                "serverId": stack.server_id,
                "path": str(allowed / "volumes"),
            },
        )
        backup = await _ready(stack, volume_id, backupTargetId=str(target["id"]))
        assert backup["backupTargetId"] == target["id"]
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
