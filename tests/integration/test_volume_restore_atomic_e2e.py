"""A volume restore never leaves the volume partly filled, end to end with a real agent, real
Docker and a running app on the volume (a few hundred files, tens of MiB, so the replace takes
measurable time): the agent's link is dropped while the agent replaces the volume from its
staging copy, then the agent process is SIGKILLed mid-replace and started again. Each time
the volume ends holding exactly the backup's files, the app runs again, and no staging
volume, helper container or intent record is left. The coordinator marks the restore failed
``replace-unconfirmed`` with the reason while the agent is away, and ``ready`` once the agent,
back on a link, confirms the replace (``volume_restore_settle``)."""

import asyncio
import logging
import time
from pathlib import Path

import docker
import pytest

from tests.harness import Coordinator, eventually, scaled
from tests.integration.backup_stacks import (
    WRITER,
    _files,
    _leftovers,
    _sh,
    volume_backup,
    written_volume,
)
from tests.integration.stacks import Workload, workload

pytestmark = pytest.mark.docker

# 300 files of 256 KiB of random bytes (75 MiB) in 3 folders.
FILL = (
    "for d in 1 2 3; do mkdir -p /v/bulk$d; for i in $(seq 1 100); do"
    " head -c 262144 /dev/urandom > /v/bulk$d/f$i; done; done"
)
# Change the volume after the backup: files deleted, changed and added.
CHANGE = "rm -rf /v/bulk2 /v/notes && echo changed > /v/a.txt && echo new > /v/c.txt"


async def _replacing(client: docker.DockerClient, backup_id: str) -> None:
    """Wait until the agent's helper that empties or fills the target volume exists (the
    agent is mid-replace); a tight poll, bounded by a deadline."""
    names = {f"berth-vem-{backup_id.lower()}", f"berth-vrt-{backup_id.lower()}"}
    deadline = time.monotonic() + scaled(180)
    while time.monotonic() < deadline:
        # The plain list call (no inspect of each container): cheap while the engine copies.
        helpers = client.api.containers(all=True, filters={"label": "berth.volume-helper"})
        if names & {str(n).lstrip("/") for c in helpers for n in c.get("Names") or []}:
            return
        await asyncio.sleep(0.02)  # poll interval; the deadline bounds the wait
    raise AssertionError(f"timed out waiting for the replace of {backup_id} to start")


async def _restore(stack: Workload, backup_id: str) -> None:
    await stack.call(
        "POST",
        f"/storage-volumes/backups/{backup_id}/restore",
        {"acknowledgeDataOverwrite": True},
    )


async def _unconfirmed(stack: Workload, backup_id: str) -> None:
    async def ended() -> bool:
        shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
        return bool(shown["backup"]["latestRestoreAttempt"]["status"] != "pending")

    await eventually(ended, timeout=120, what=f"the restore of {backup_id} to end")
    shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
    attempt = shown["backup"]["latestRestoreAttempt"]
    assert attempt["status"] == "failed", attempt
    assert attempt["failureCode"] == "replace-unconfirmed", attempt
    assert "staged copy" in attempt["failureMessage"]


async def _confirmed(stack: Workload, backup_id: str, caplog: pytest.LogCaptureFixture) -> None:
    """The agent, asked once back on a link, confirms the replace: the restore is ready (not
    answered on the lost link: the coordinator settled it)."""

    async def ready() -> bool:
        shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
        attempt = shown["backup"]["latestRestoreAttempt"]
        if attempt["status"] == "failed":
            assert attempt["failureCode"] == "replace-unconfirmed", attempt
        return bool(attempt["status"] == "ready")

    await eventually(ready, timeout=180, what=f"the restore of {backup_id} to be confirmed")
    shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
    attempt = shown["backup"]["latestRestoreAttempt"]
    assert (attempt["failureCode"], attempt["failedAt"]) == (None, None), attempt
    assert attempt["completedAt"]
    confirmed = f"restore {backup_id} confirmed by its agent after the lost link"
    assert caplog.text.count(confirmed) == 1
    caplog.clear()


async def _whole(
    stack: Workload, client: docker.DockerClient, volume_id: str, original: dict[str, str]
) -> None:
    """The replace ended: nothing of it is left, the volume holds exactly the backup's files and
    the app runs again."""

    async def ended() -> bool:
        records = stack.agent.state_dir / "volume-restores"
        return _leftovers(client) == [] and not any(records.glob("*.json"))

    await eventually(ended, timeout=180, what="the agent to finish the replace")
    assert _files(client, volume_id) == original

    async def running() -> bool:
        return [c.status for c in stack.containers(client)] == ["running"]

    await eventually(running, timeout=30, what="the app to run again")


async def test_a_restore_cut_off_mid_replace_leaves_the_volume_whole(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="coordinator.backups.volume_settle")
    stack = await workload(coordinator, admin_token, tmp_path / "agent", WRITER)
    try:
        volume_id, _ = await written_volume(stack, docker_client)
        _sh(docker_client, volume_id, FILL)
        original = _files(docker_client, volume_id)
        assert len(original) == 302
        backup_id = (await volume_backup(stack, volume_id))["id"]

        # The link is lost once the agent replaces the volume: the replace goes on.
        _sh(docker_client, volume_id, CHANGE)
        assert _files(docker_client, volume_id) != original
        await _restore(stack, backup_id)
        await _replacing(docker_client, backup_id)
        session = coordinator.registry.get(stack.server_id)
        assert session is not None
        await session.close(1001, "the test drops the link")
        await _whole(stack, docker_client, volume_id, original)
        await _confirmed(stack, backup_id, caplog)

        # The agent is killed mid-replace: its record survives, and its next start redoes it.
        _sh(docker_client, volume_id, CHANGE)
        await _restore(stack, backup_id)
        await _replacing(docker_client, backup_id)
        assert stack.agent.process is not None
        stack.agent.process.kill()
        await stack.agent.process.wait()
        record = stack.agent.state_dir / "volume-restores" / f"{backup_id}.json"
        assert record.is_file()
        await _unconfirmed(stack, backup_id)
        await stack.agent.start()
        await _whole(stack, docker_client, volume_id, original)
        await _confirmed(stack, backup_id, caplog)
        assert "redoing the replace of restore" in stack.agent.log()
    finally:
        await stack.agent.stop()
