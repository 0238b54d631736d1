"""``verifyAfterBackup`` through the policy loop without an agent: a policy's ready backup is
verified once (the check then fails ``unavailable``), a failed backup or a manual one never,
and a policy without the flag verifies nothing (tests/integration/test_policy_verify_e2e.py
has the agent and Docker); ``berth db policy`` sets, lists and shows a database policy."""

from datetime import timedelta
from pathlib import Path
from typing import Any

from coordinator.backups import RUNNER_KEY, VOLUME_RUNNER_KEY, policies, volume_policies
from coordinator.db.backup_models import DependencyBackup, DependencyBackupPolicy
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.db.volume_policy_models import StorageVolumeBackupPolicy
from tests.harness import Coordinator, eventually
from tests.integration.test_cli_workspace import Cli
from tests.unit.coordinator.support import audit_events
from tests.unit.coordinator.test_backup_policies import _database
from tests.unit.coordinator.test_volume_backup_policies import _failed, _post, _volume


async def _checked(backup_id: str) -> bool:
    """The verification the loop started has ended (failed: no agent)."""
    row = await StorageVolumeBackup.get(id=backup_id)
    return row.verification_status == "failed"


async def _requested(coordinator: Coordinator, token: str, owner: str) -> list[dict[str, Any]]:
    events = await audit_events(coordinator, token, aggregateId=owner)
    return [e for e in events if e["eventType"].endswith(".backup-verification-requested")]


async def test_a_volume_policy_verifies_its_ready_backup_once_and_not_a_failed_one(
    coordinator: Coordinator, admin_token: str
) -> None:
    volume = await _volume(coordinator, admin_token)
    runner = coordinator.app[VOLUME_RUNNER_KEY]
    body = {
        "storageVolumeId": volume,
        "retentionDays": 3,
        "scheduleIntervalHours": 1,
        "retryOnFailure": False,
        "verifyAfterBackup": True,
    }
    status, created, _ = await _post(coordinator, admin_token, body)
    assert status == 200, created
    policy = await StorageVolumeBackupPolicy.get(id=created["id"])
    assert policy.verify_after_backup
    assert policy.next_run_at is not None
    now = policy.next_run_at + timedelta(minutes=1)
    [taken] = await volume_policies.run_due(runner, now)

    # No agent: the backup fails; a failed backup is never verified.
    await eventually(lambda: _failed(taken), what="the scheduled volume backup to fail")
    assert await volume_policies.run_due(runner, now) == []
    row = await StorageVolumeBackup.get(id=taken)
    assert row.verification_status is None
    assert await _requested(coordinator, admin_token, volume) == []

    # Ready (as the agent would have made it): the next look verifies it, as the system.
    await StorageVolumeBackup.filter(id=taken).update(status="ready", failure_code=None)
    assert await volume_policies.run_due(runner, now) == []
    await eventually(lambda: _checked(taken), what="the policy's verification to end")
    row = await StorageVolumeBackup.get(id=taken)
    assert row.verification_message is not None
    assert row.verification_message.startswith("unavailable:")
    [event] = await _requested(coordinator, admin_token, volume)
    assert event["actorKind"] == "system"
    assert event["payload"] == {
        "projectId": row.project_id,
        "environmentId": row.environment_id,
        "backupId": taken,
        "policyId": policy.id,
    }

    # Verified once: a failed verification is not started again by the loop.
    assert await volume_policies.run_due(runner, now) == []
    assert len(await _requested(coordinator, admin_token, volume)) == 1


async def test_without_the_flag_or_for_a_manual_backup_nothing_is_verified(
    coordinator: Coordinator, admin_token: str
) -> None:
    volume = await _volume(coordinator, admin_token)
    runner = coordinator.app[VOLUME_RUNNER_KEY]
    body = {"storageVolumeId": volume, "retentionDays": 3, "scheduleIntervalHours": 1}
    _, created, _ = await _post(coordinator, admin_token, {**body, "retryOnFailure": False})
    policy = await StorageVolumeBackupPolicy.get(id=created["id"])
    assert policy.verify_after_backup is False
    assert policy.next_run_at is not None
    now = policy.next_run_at + timedelta(minutes=1)
    [taken] = await volume_policies.run_due(runner, now)
    await eventually(lambda: _failed(taken), what="the scheduled volume backup to fail")
    await StorageVolumeBackup.filter(id=taken).update(status="ready")
    assert await volume_policies.run_due(runner, now) == []
    assert (await StorageVolumeBackup.get(id=taken)).verification_status is None

    # A manual backup of a volume whose policy verifies is not the policy's: left alone.
    path = f"/storage-volumes/{volume}/backups"
    status, manual, _ = await coordinator.call("POST", path, token=admin_token, json={})
    assert status == 202, manual
    await eventually(lambda: _failed(manual["id"]), what="the manual backup to fail")
    await StorageVolumeBackup.filter(id=manual["id"]).update(status="ready")
    await StorageVolumeBackupPolicy.filter(id=policy.id).update(verify_after_backup=True)
    assert await volume_policies.run_due(runner, now) == []
    assert (await StorageVolumeBackup.get(id=manual["id"])).verification_status is None
    # (The policy's own backup, ready and never verified, is verified now the flag is on.)
    await eventually(lambda: _checked(taken), what="the policy's own backup to be verified")
    assert [
        e["payload"]["backupId"] for e in await _requested(coordinator, admin_token, volume)
    ] == [taken]


async def test_a_database_policy_verifies_its_ready_backup(
    coordinator: Coordinator, admin_token: str
) -> None:
    db = await _database(coordinator, admin_token)
    runner = coordinator.app[RUNNER_KEY]
    body = {
        "dependencyResourceId": db,
        "retentionDays": 3,
        "scheduleIntervalHours": 1,
        "retryOnFailure": False,
        "verifyAfterBackup": True,
    }
    path = "/dependency-resources/backup-policies"
    status, created, _ = await coordinator.call("POST", path, token=admin_token, json=body)
    assert status == 200, created
    policy = await DependencyBackupPolicy.get(id=created["id"])
    assert policy.next_run_at is not None
    now = policy.next_run_at + timedelta(seconds=1)
    [taken] = await policies.run_due(runner, now)

    async def status_of(backup_id: str, field: str, want: str) -> bool:
        return bool(getattr(await DependencyBackup.get(id=backup_id), field) == want)

    await eventually(lambda: status_of(taken, "status", "failed"), what="the backup to fail")
    assert await policies.run_due(runner, now) == []
    assert (await DependencyBackup.get(id=taken)).verification_status is None

    await DependencyBackup.filter(id=taken).update(status="ready")
    assert await policies.run_due(runner, now) == []
    await eventually(
        lambda: status_of(taken, "verification_status", "failed"), what="the verification to end"
    )
    [event] = await _requested(coordinator, admin_token, db)
    assert event["payload"]["policyId"] == policy.id
    assert event["actorKind"] == "system"
    assert await policies.run_due(runner, now) == []
    assert len(await _requested(coordinator, admin_token, db)) == 1


async def test_the_cli_sets_lists_and_shows_a_database_policy(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    db = await _database(coordinator, admin_token)
    cli = Cli(coordinator, admin_token, tmp_path / "config")
    refused = await cli("db", "policy", "set", db, "--every", "0", "--keep-days", "1")
    assert refused.exit_code != 0
    assert "scheduleIntervalHours" in refused.output
    assert await DependencyBackupPolicy.all().count() == 0

    shown = await cli.json(
        "db", "policy", "set", "Shop DB", "--every", "12", "--keep-days", "30", "--keep", "5",
        "--no-retry", "--verify",
    )  # fmt: skip
    policy = shown["policy"]
    assert (policy["dependencyResourceId"], policy["scheduleIntervalHours"]) == (db, 12)
    assert (policy["retentionDays"], policy["keepCount"]) == (30, 5)
    assert (policy["retryOnFailure"], policy["enabled"], policy["verifyAfterBackup"]) == (
        False,
        True,
        True,
    )
    assert (await DependencyBackupPolicy.get(id=policy["id"])).verify_after_backup is True
    assert shown == await cli.api(f"/dependency-resources/backup-policies/{policy['id']}")
    listing = await cli.ok("db", "policy", "list", "--db", db)
    assert policy["id"] in listing
    details = await cli.ok("db", "policy", "show", policy["id"])
    assert "Verify after backup" in details
    assert db in details
    # Set again without --verify: replaced, no longer verifying.
    again = await cli.json("db", "policy", "set", db, "--every", "12", "--keep-days", "30")
    assert again["policy"]["verifyAfterBackup"] is False
    assert again["policy"]["version"] == "2"
    missing = await cli("db", "policy", "show", "bkp_none")
    assert missing.exit_code != 0
