"""Comparing a restored volume's count with the manifest taken with its backup, and the verify
route's rules without an agent (tests/integration/test_volume_backup_verification_e2e.py has
the agent and Docker)."""

from datetime import UTC, datetime

from coordinator.backups import VOLUME_RUNNER_KEY
from coordinator.backups.volume_verify import _reason, compare
from coordinator.db.models import Project
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.ids import new_id
from shared.errors import UnknownType
from shared.messages import VolumeManifest
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.support import assert_error, audit_events
from tests.unit.coordinator.test_resources_api import workspace

TAKEN = VolumeManifest(entries=4, files=2, file_bytes=108_900, paths_sha256="a" * 64)


def test_the_same_count_passes() -> None:
    passed, message = compare(TAKEN, TAKEN.model_copy())
    assert passed
    assert message == (
        "restored 2 file(s) with 108900 byte(s) in 4 entries: matches the backup's manifest"
    )


def test_each_difference_fails_and_is_named() -> None:
    found = VolumeManifest(entries=3, files=1, file_bytes=6, paths_sha256="b" * 64)
    passed, message = compare(TAKEN, found)
    assert not passed
    assert "entries 3 where the backup recorded 4" in message
    assert "files 1 where the backup recorded 2" in message
    assert "file bytes 6 where the backup recorded 108900" in message
    assert "paths, types or sizes differ" in message
    renamed = TAKEN.model_copy(update={"paths_sha256": "c" * 64})
    passed, message = compare(TAKEN, renamed)
    assert not passed
    assert message.endswith("the files' paths, types or sizes differ from the backup's")


def test_a_backup_without_a_manifest_passes_on_a_whole_archive_and_says_so() -> None:
    passed, message = compare(None, TAKEN)
    assert passed
    assert "no manifest to compare with" in message


async def _backup(coordinator: Coordinator, token: str) -> str:
    """A volume backup row on a server without an agent."""
    project_id, environment_id = await workspace(coordinator, token)
    server = await coordinator.add_server(token, "files-1")
    project = await Project.get(id=project_id)
    now = datetime.now(UTC)
    row = await StorageVolumeBackup.create(
        id=new_id("vbk"),
        organization_id=project.organization_id,  # type: ignore[attr-defined]
        project_id=project_id,
        environment_id=environment_id,
        storage_volume_id="vol_x",
        server_id=server["id"],
        status="ready",
        attempt_id=new_id("bka"),
        requested_at=now,
        created_at=now,
        sha256="0" * 64,
        plain_bytes=10,
    )
    return row.id


async def test_verify_route_records_a_failure_without_an_agent_and_refuses_bad_states(
    coordinator: Coordinator, admin_token: str
) -> None:
    backup_id = await _backup(coordinator, admin_token)
    path = f"/storage-volumes/backups/{backup_id}/verify"
    status, answer, _ = await coordinator.call("POST", path, token=admin_token, json={})
    assert status == 202, answer
    assert answer == {"id": backup_id}

    async def failed() -> bool:
        row = await StorageVolumeBackup.get(id=backup_id)
        return row.verification_status == "failed"

    await eventually(failed, timeout=10, what="the verification to fail (no agent)")
    status, shown, _ = await coordinator.call(
        "GET", f"/storage-volumes/backups/{backup_id}", token=admin_token
    )
    assert status == 200, shown
    verification = shown["backup"]["verification"]
    assert verification["status"] == "failed"
    assert verification["message"].startswith("unavailable"), verification
    assert verification["files"] is None
    assert shown["backup"]["manifest"] is None

    # Unknown fields, unknown ids and a backup that is not ready change nothing.
    bad = await coordinator.call("POST", path, token=admin_token, json={"x": 1})
    assert_error(bad, 400, "invalid_request")
    missing = "/storage-volumes/backups/vbk_none/verify"
    assert_error(
        await coordinator.call("POST", missing, token=admin_token, json={}), 404, "not_found"
    )
    first = await StorageVolumeBackup.get(id=backup_id)
    pending = new_id("vbk")
    _ = await StorageVolumeBackup.create(
        **{
            **{k: getattr(first, k) for k in ("organization_id", "project_id", "environment_id")},
            "id": pending,
            "storage_volume_id": "vol_x",
            "server_id": first.server_id,
            "status": "pending",
            "attempt_id": new_id("bka"),
            "requested_at": first.requested_at,
            "created_at": first.created_at,
        }
    )
    refused = await coordinator.call(
        "POST", f"/storage-volumes/backups/{pending}/verify", token=admin_token, json={}
    )
    assert_error(refused, 409, "conflict")
    assert (await StorageVolumeBackup.get(id=pending)).verification_status is None

    # One at a time: a running verification refuses a second one.
    await StorageVolumeBackup.filter(id=backup_id).update(verification_status="pending")
    again = await coordinator.call("POST", path, token=admin_token, json={})
    assert_error(again, 409, "conflict")

    # A coordinator restart fails the one that ran.
    await coordinator.app[VOLUME_RUNNER_KEY].fail_interrupted()
    row = await StorageVolumeBackup.get(id=backup_id)
    assert row.verification_status == "failed"
    assert row.verification_message == "the coordinator restarted during the transfer"

    events = await audit_events(coordinator, admin_token, aggregateId="vol_x")
    kinds = [e["eventType"] for e in events]
    assert kinds.count("storage-volume.backup-verification-requested") == 1


def test_an_agent_without_verification_is_told_to_upgrade() -> None:
    reason = _reason(UnknownType("unknown message type 'volume_verify_open'"))
    assert reason.startswith("agent-unsupported: ")
