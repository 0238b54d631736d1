"""Storage-volume backups end to end: a real agent deploys a busybox app writing files into a
Docker named volume; the volume is backed up (a tar archive streamed over the agent link into
an AES-GCM artifact on the coordinator; once with the app stopped for the copy), files are
deleted and changed, a damaged artifact refused, the volume restored under the running app
(stopped and started again) and with no container, and restored into a second, new volume."""

import tarfile
import time
from pathlib import Path

import docker
import pytest

from coordinator.backups.artifacts import load_key, read_chunks
from coordinator.db.volume_backup_models import StorageVolumeBackup
from tests.harness import Coordinator, eventually
from tests.integration.backup_stacks import (
    WRITER,
    _files,
    _leftovers,
    _restored,
    _sh,
    _volume,
    attached,
    volume_backup,
    written_volume,
)
from tests.integration.stacks import Workload, workload
from tests.integration.test_cli_workspace import Cli

pytestmark = pytest.mark.docker


async def test_volume_backup_restores_deleted_files_and_into_a_new_volume(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", WRITER)
    try:
        await _scenario(stack, coordinator, docker_client)
        await _cli(stack, coordinator, docker_client, tmp_path / "config")
    finally:
        await stack.agent.stop()


async def _scenario(stack: Workload, coordinator: Coordinator, client: docker.DockerClient) -> None:
    volume_id = await _volume(stack, "data")
    # Not placed on a server yet (no deployment used it): nothing to back up.
    status, early, _ = await coordinator.call(
        "POST", f"/storage-volumes/{volume_id}/backups", token=stack.token, json={}
    )
    assert status == 409, early
    assert await StorageVolumeBackup.filter(storage_volume_id=volume_id).count() == 0

    _, original = await written_volume(stack, client, volume_id)
    assert set(original) == {"./a.txt", "./notes/b.txt"}

    backup = await volume_backup(stack, volume_id)
    assert backup["storageVolumeId"] == volume_id
    assert backup["serverId"] == stack.server_id
    assert backup["format"] == "tar"
    assert backup["encryption"] == "aes-256-gcm"
    assert backup["providerArtifactHandle"] == f"coordinator://backups/{backup['id']}"
    assert len(backup["sha256"]) == 64

    # Encrypted at rest; the operator's key opens a tar archive holding the volume's files.
    data_dir = coordinator.settings().data_dir
    artifact = data_dir / "backups" / f"{backup['id']}.berthbk"
    assert artifact.stat().st_size == backup["sizeBytes"]
    assert b"first\n" not in artifact.read_bytes()
    plain = data_dir / "plain.tar"
    key = load_key(data_dir / "backup.key")
    plain.write_bytes(b"".join(read_chunks(artifact, key, backup["id"], backup["sha256"])))
    assert plain.stat().st_size == backup["archiveBytes"]
    with tarfile.open(plain) as archive:
        assert {"./a.txt", "./notes/b.txt"} <= set(archive.getnames())
    assert backup["stopResource"] is False
    assert _leftovers(client) == []

    # With stopResource the app is stopped for the copy and started again after it.
    (running,) = stack.containers(client)
    started = running.attrs["State"]["StartedAt"]
    quiet = await volume_backup(stack, volume_id, stopResource=True)
    assert quiet["stopResource"] is True
    assert quiet["archiveBytes"] == backup["archiveBytes"]
    running.reload()
    assert running.attrs["State"]["Running"] is True
    assert running.attrs["State"]["StartedAt"] != started
    assert _leftovers(client) == []

    listed = await stack.call("GET", f"/storage-volumes/{volume_id}/backups?status=ready")
    assert [b["id"] for b in listed["items"]] == [backup["id"], quiet["id"]]

    # Bad input changes nothing: no acknowledgement, unknown ids, a bind mount as target.
    for path, body, want in (
        (f"/storage-volumes/backups/{backup['id']}/restore", {}, 400),
        ("/storage-volumes/backups/vbk_unknown/restore", {"acknowledgeDataOverwrite": True}, 404),
        (
            f"/storage-volumes/backups/{backup['id']}/restore",
            {"acknowledgeDataOverwrite": True, "targetStorageVolumeId": "vol_unknown"},
            404,
        ),
        ("/storage-volumes/vol_unknown/backups", {}, 404),
    ):
        status, refused, _ = await coordinator.call("POST", path, token=stack.token, json=body)
        assert status == want, (path, refused)
        assert set(refused["error"]) >= {"code", "message", "retriable", "details"}
        assert "requestId" in refused
    shown = await stack.call("GET", f"/storage-volumes/backups/{backup['id']}")
    assert shown["backup"]["latestRestoreAttempt"] is None
    bind_id = await _volume(stack, "host dir", kind="bind-mount", sourcePath="/srv/berth-test")
    status, refused, _ = await coordinator.call(
        "POST", f"/storage-volumes/{bind_id}/backups", token=stack.token, json={}
    )
    assert status == 400, refused
    assert refused["error"]["details"]["supported"] == ["named-volume"]
    assert await StorageVolumeBackup.filter(storage_volume_id=bind_id).count() == 0

    # Another tenant's backup is a 404 and is never listed.
    owner = (await StorageVolumeBackup.get(id=backup["id"])).organization_id
    await StorageVolumeBackup.filter(id=backup["id"]).update(organization_id="org_other")
    status, hidden, _ = await coordinator.call(
        "GET", f"/storage-volumes/backups/{backup['id']}", token=stack.token
    )
    assert status == 404, hidden
    listed = await stack.call("GET", f"/storage-volumes/{volume_id}/backups")
    assert [b["id"] for b in listed["items"]] == [quiet["id"]]
    await StorageVolumeBackup.filter(id=backup["id"]).update(organization_id=owner)

    # Delete one file, change another, add a third.
    _sh(client, volume_id, "rm -rf /v/notes && echo changed > /v/a.txt && echo new > /v/c.txt")
    assert set(_files(client, volume_id)) == {"./a.txt", "./c.txt"}

    # A damaged artifact (its checksum differs) fails the restore before the volume is touched.
    await StorageVolumeBackup.filter(id=backup["id"]).update(sha256="0" * 64)
    attempt = await _restored(stack, backup["id"], {})
    assert attempt["status"] == "failed", attempt
    assert attempt["failureCode"] == "artifact-damaged"
    assert set(_files(client, volume_id)) == {"./a.txt", "./c.txt"}
    assert _leftovers(client) == []
    await StorageVolumeBackup.filter(id=backup["id"]).update(sha256=backup["sha256"])

    # Restore while the app runs: it is stopped, the volume emptied and filled, the app started
    # again. Exactly the backed-up files are back (the app writes nothing on a later start).
    (running,) = stack.containers(client)
    running.reload()
    started = running.attrs["State"]["StartedAt"]
    attempt = await _restored(stack, backup["id"], {})
    assert attempt["status"] == "ready", attempt
    assert attempt["targetStorageVolumeId"] == volume_id
    assert _files(client, volume_id) == original
    running.reload()
    assert running.attrs["State"]["Running"] is True
    assert running.attrs["State"]["StartedAt"] != started
    assert _leftovers(client) == []

    # With no container naming it, the volume is replaced whole and keeps its labels.
    _sh(client, volume_id, "rm -rf /v/notes && echo new > /v/c.txt")
    running.remove(force=True)
    attempt = await _restored(stack, backup["id"], {})
    assert attempt["status"] == "ready", attempt
    assert _files(client, volume_id) == original
    labels = client.volumes.get(f"berth-{volume_id.lower()}").attrs["Labels"]
    assert labels["berth.storage-volume-id"] == volume_id
    assert _leftovers(client) == []

    # Into a new volume that no deployment placed yet: placed on the backup's server, filled.
    clone_id = await _volume(stack, "data copy")
    attempt = await _restored(stack, backup["id"], {"targetStorageVolumeId": clone_id})
    assert attempt["status"] == "ready", attempt
    assert attempt["targetStorageVolumeId"] == clone_id
    assert _files(client, clone_id) == original
    shown_clone = await stack.call("GET", f"/storage-volumes/{clone_id}")
    assert shown_clone["storageVolume"]["serverId"] == stack.server_id
    assert _leftovers(client) == []


async def _cli(
    stack: Workload, coordinator: Coordinator, client: docker.DockerClient, config_home: Path
) -> None:
    """The same through ``berth volumes backup|backups|restore``."""
    cli = Cli(coordinator, stack.token, config_home)
    taken = await cli.json("volumes", "backup", "data")
    backup_id = taken["backup"]["id"]
    assert taken["backup"]["status"] == "ready"
    listing = await cli.ok("volumes", "backups", "data")
    assert backup_id in listing
    assert "ready" in listing
    copy_id = await _volume(stack, "cli copy")
    restored = await cli.json("volumes", "restore", backup_id, "--into", "cli copy", "--yes")
    assert restored["backup"]["latestRestoreAttempt"]["status"] == "ready"
    assert restored["backup"]["latestRestoreAttempt"]["targetStorageVolumeId"] == copy_id
    volume_id = taken["backup"]["storageVolumeId"]
    assert _files(client, copy_id) == _files(client, volume_id)
    refused = await cli("volumes", "restore", backup_id, input="n\n")
    assert refused.exit_code != 0


# Ignores SIGTERM: the engine's stop waits its full grace period before killing it.
STUBBORN = "trap '' TERM; mkdir -p /data && echo x > /data/x; while true; do sleep 1; done"


async def test_a_volume_backup_cut_off_by_a_lost_link_fails_without_an_artifact(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", STUBBORN)
    try:
        volume_id = await _volume(stack, "data")
        await attached(stack, volume_id)
        (container,) = stack.containers(docker_client)
        since = int(time.time()) - 1

        # The backup stops the app first: its stop hangs (SIGTERM ignored) while the link goes.
        created = await stack.call(
            "POST", f"/storage-volumes/{volume_id}/backups", {"stopResource": True}
        )

        async def stopping() -> bool:
            events = docker_client.events(
                since=since,
                until=int(time.time()) + 1,
                filters={"container": container.id, "event": "kill"},
                decode=True,
            )
            return any(True for _ in events)

        await eventually(stopping, timeout=30, what="the agent to stop the app for the copy")
        await stack.agent.stop()

        async def failed() -> bool:
            shown = await stack.call("GET", f"/storage-volumes/backups/{created['id']}")
            assert shown["backup"]["status"] in ("pending", "failed"), shown
            return bool(shown["backup"]["status"] == "failed")

        await eventually(failed, timeout=60, what="the backup to fail")
        shown = (await stack.call("GET", f"/storage-volumes/backups/{created['id']}"))["backup"]
        assert shown["failureCode"] == "unavailable", shown
        assert shown["providerArtifactHandle"] is None
        assert shown["sizeBytes"] is None
        backups = coordinator.settings().data_dir / "backups"
        assert not backups.exists() or sorted(p.name for p in backups.iterdir()) == []
    finally:
        await stack.agent.stop()
