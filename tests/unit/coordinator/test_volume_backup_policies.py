"""Storage-volume backup policies through the API and the policy loop, without an agent (a
backup then fails ``unavailable``; tests/integration/test_volume_backup_policies_e2e.py has the
agent and Docker)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from coordinator.backups import VOLUME_RUNNER_KEY, volume_policies
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.db.volume_models import StorageVolume
from coordinator.db.volume_policy_models import StorageVolumeBackupPolicy
from tests.harness import Coordinator, eventually
from tests.integration.test_cli_workspace import Cli
from tests.unit.coordinator.support import assert_error, audit_events
from tests.unit.coordinator.test_environments_api import create_environment
from tests.unit.coordinator.test_projects_api import create_project, scoped_token
from tests.unit.coordinator.test_storage_volumes import create_volume

PATH = "/storage-volumes/backup-policies"


async def _volume(
    coordinator: Coordinator, token: str, placed: bool = True, project: str = "Shop"
) -> str:
    """A named volume in its own project, placed on a server without an agent unless
    ``placed`` is false."""
    project_id = await create_project(coordinator, token, project)
    environment_id = await create_environment(coordinator, token, project_id)
    volume_id = await create_volume(coordinator, token, project_id, environment_id)
    if placed:
        server = await coordinator.add_server(token, f"vol-{volume_id[-6:]}")
        await StorageVolume.filter(id=volume_id).update(server_id=server["id"])
    return volume_id


async def _post(coordinator: Coordinator, token: str, body: Any) -> Any:
    return await coordinator.call("POST", PATH, token=token, json=body)


async def _failed(backup_id: str) -> bool:
    return (await StorageVolumeBackup.get(id=backup_id)).status == "failed"


async def test_policies_are_configured_listed_versioned_and_audited(
    coordinator: Coordinator, admin_token: str
) -> None:
    volume = await _volume(coordinator, admin_token)
    for bad in (
        {"storageVolumeId": volume, "retentionDays": 1, "scheduleIntervalHours": 0},
        {"storageVolumeId": volume, "retentionDays": 0, "scheduleIntervalHours": 1},
        {"storageVolumeId": volume, "retentionDays": 1},
        {"storageVolumeId": volume, "retentionDays": 1, "scheduleIntervalHours": 1, "x": 1},
        {"storageVolumeId": volume, "retentionDays": 1, "scheduleIntervalHours": 1, "keepCount": 0},
    ):
        assert_error(await _post(coordinator, admin_token, bad), 400, "invalid_request")
    missing = {"storageVolumeId": "svol_none", "retentionDays": 1, "scheduleIntervalHours": 1}
    assert_error(await _post(coordinator, admin_token, missing), 404, "not_found")
    assert await StorageVolumeBackupPolicy.all().count() == 0

    body = {"storageVolumeId": volume, "retentionDays": 7, "scheduleIntervalHours": 6}
    status, created, _ = await _post(coordinator, admin_token, {**body, "stopResource": True})
    assert status == 200, created
    assert created["id"].startswith("vbp_")
    status, shown, _ = await coordinator.call("GET", f"{PATH}/{created['id']}", token=admin_token)
    assert status == 200, shown
    assert shown["schemaVersion"] == "storage-volume-backup-policies.show/v1"
    policy = shown["policy"]
    assert policy["schemaVersion"] == "storage-volume-backup-policies.policy/v1"
    assert (policy["storageVolumeId"], policy["version"], policy["retentionDays"]) == (
        volume,
        "1",
        7,
    )
    assert (policy["scheduleIntervalHours"], policy["stopResource"], policy["keepCount"]) == (
        6,
        True,
        None,
    )
    assert (policy["enabled"], policy["retryOnFailure"], policy["lastRunAt"]) == (True, True, None)
    assert policy["backupTargetId"] is None
    next_run = datetime.fromisoformat(policy["nextRunAt"])
    assert timedelta(hours=5.9) < next_run - datetime.now(UTC) <= timedelta(hours=6)

    # Configuring again replaces the one policy of the volume and raises its version.
    again = {**body, "keepCount": 2, "enabled": False}
    status, replaced, _ = await _post(coordinator, admin_token, again)
    assert (status, replaced["id"]) == (200, created["id"])
    status, listed, _ = await coordinator.call("GET", f"{PATH}?enabledOnly=true", token=admin_token)
    assert (status, listed["items"]) == (200, [])
    status, listed, _ = await coordinator.call(
        "GET", f"{PATH}?storageVolumeId={volume}", token=admin_token
    )
    assert status == 200, listed
    assert listed["schemaVersion"] == "storage-volume-backup-policies.list/v1"
    [item] = listed["items"]
    assert (item["version"], item["keepCount"], item["enabled"], item["stopResource"]) == (
        "2",
        2,
        False,
        False,
    )
    events = await audit_events(coordinator, admin_token, aggregateId=volume)
    configured = [e for e in events if e["eventType"] == "storage-volume.backup-policy-configured"]
    assert len(configured) == 2
    assert configured[0]["payload"]["stopResource"] is True

    # Another organisation's policy is a 404, never a 403.
    await StorageVolumeBackupPolicy.filter(id=created["id"]).update(organization_id="org_other")
    assert_error(
        await coordinator.call("GET", f"{PATH}/{created['id']}", token=admin_token),
        404,
        "not_found",
    )


async def test_a_bind_mount_has_no_policy_and_scope_hides_other_projects(
    coordinator: Coordinator, admin_token: str
) -> None:
    volume = await _volume(coordinator, admin_token)
    other = await _volume(coordinator, admin_token, project="Blog")
    await StorageVolume.filter(id=other).update(kind="bind-mount")
    body = {"storageVolumeId": other, "retentionDays": 1, "scheduleIntervalHours": 1}
    error = assert_error(await _post(coordinator, admin_token, body), 400, "invalid_request")
    assert error["details"]["field"] == "storageVolumeId"
    body = {**body, "storageVolumeId": volume, "backupTargetId": "bkt_none"}
    error = assert_error(await _post(coordinator, admin_token, body), 404, "not_found")
    assert error["details"]["field"] == "backupTargetId"
    assert await StorageVolumeBackupPolicy.all().count() == 0

    _, created, _ = await _post(
        coordinator, admin_token, {k: v for k, v in body.items() if k != "backupTargetId"}
    )
    own = await StorageVolume.get(id=volume)
    outsider = await StorageVolume.get(id=other)
    token = await scoped_token(
        coordinator,
        admin_token,
        ["storage-volumes:read", "storage-volumes:write"],
        projectIds=[outsider.project_id],
    )
    assert own.project_id != outsider.project_id
    status, listed, _ = await coordinator.call("GET", PATH, token=token)
    assert (status, listed["items"]) == (200, [])
    assert_error(
        await coordinator.call("GET", f"{PATH}/{created['id']}", token=token), 404, "not_found"
    )
    mine = {"storageVolumeId": volume, "retentionDays": 9, "scheduleIntervalHours": 9}
    assert_error(await _post(coordinator, token, mine), 404, "not_found")
    reader = await scoped_token(coordinator, admin_token, ["storage-volumes:read"])
    assert_error(await _post(coordinator, reader, mine), 403, "forbidden")
    assert (await StorageVolumeBackupPolicy.get(id=created["id"])).retention_days == 1


async def test_due_policies_back_up_retry_once_and_wait_for_placement(
    coordinator: Coordinator, admin_token: str
) -> None:
    volume = await _volume(coordinator, admin_token)
    unplaced = await _volume(coordinator, admin_token, placed=False, project="Blog")
    runner = coordinator.app[VOLUME_RUNNER_KEY]
    ids = {}
    for volume_id in (volume, unplaced):
        body = {"storageVolumeId": volume_id, "retentionDays": 3, "scheduleIntervalHours": 1}
        _, created, _ = await _post(coordinator, admin_token, {**body, "stopResource": True})
        ids[volume_id] = created["id"]
    policy = await StorageVolumeBackupPolicy.get(id=ids[volume])
    assert policy.next_run_at is not None

    assert await volume_policies.run_due(runner, policy.next_run_at - timedelta(seconds=1)) == []
    now = policy.next_run_at + timedelta(minutes=1)
    # The unplaced volume's run is skipped (nothing to back up yet), its next run moves on.
    [first] = await volume_policies.run_due(runner, now)
    row = await StorageVolumeBackup.get(id=first)
    assert (row.storage_volume_id, row.stop_resource) == (volume, True)
    waiting = await StorageVolumeBackupPolicy.get(id=ids[unplaced])
    assert (waiting.last_run_at, waiting.next_run_at, waiting.last_backup_id) == (
        now,
        now + timedelta(hours=1),
        None,
    )

    # No agent: the backup fails (unavailable); the next look retries it once, not twice.
    await eventually(lambda: _failed(first), what="the scheduled volume backup to fail")
    assert (await StorageVolumeBackup.get(id=first)).failure_code == "unavailable"
    [retry] = await volume_policies.run_due(runner, now)
    assert retry != first
    await eventually(lambda: _failed(retry), what="the retry to fail")
    assert await volume_policies.run_due(runner, now) == []
    policy = await StorageVolumeBackupPolicy.get(id=ids[volume])
    assert (policy.last_run_at, policy.next_run_at) == (now, now + timedelta(hours=1))
    assert (policy.last_backup_id, policy.retried_backup_id) == (retry, retry)
    events = await audit_events(coordinator, admin_token, aggregateId=volume)
    requested = [e for e in events if e["eventType"] == "storage-volume.backup-requested"]
    assert [e["payload"]["policyId"] for e in requested] == [policy.id, policy.id]
    assert [e["payload"]["retry"] for e in requested] == [False, True]

    # A disabled policy takes nothing.
    await StorageVolumeBackupPolicy.filter(id=policy.id).update(enabled=False)
    assert await volume_policies.run_due(runner, now + timedelta(hours=2)) == []


async def test_retention_prunes_old_and_surplus_backups_with_their_artifacts(
    coordinator: Coordinator, admin_token: str
) -> None:
    volume = await _volume(coordinator, admin_token)
    runner = coordinator.app[VOLUME_RUNNER_KEY]
    body = {"storageVolumeId": volume, "retentionDays": 3, "scheduleIntervalHours": 24}
    _, created, _ = await _post(coordinator, admin_token, {**body, "keepCount": 2})
    placed = await StorageVolume.get(id=volume)
    now = datetime.now(UTC)
    ages = (
        now - timedelta(days=4),  # past retentionDays
        now - timedelta(hours=4),  # beyond keepCount
        now - timedelta(hours=3),  # restoring: never pruned, not counted
        now - timedelta(hours=2),
        now - timedelta(hours=1),
        now - timedelta(days=5),  # being verified: never pruned, not counted
    )
    ids: list[str] = []
    for index, age in enumerate(ages):
        backup_id = f"vbk_ready{index}"
        ids.append(backup_id)
        _ = await StorageVolumeBackup.create(
            id=backup_id,
            organization_id=placed.organization_id,  # type: ignore[attr-defined]
            project_id=placed.project_id,
            environment_id=placed.environment_id,
            storage_volume_id=volume,
            server_id=placed.server_id,
            status="ready",
            restore_status="pending" if index == 2 else None,
            verification_status="pending" if index == 5 else None,
            attempt_id="bka_x",
            requested_at=age,
            created_at=age,
        )
        path = runner.runner.artifact_path(backup_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    policy = await StorageVolumeBackupPolicy.get(id=created["id"])
    assert await volume_policies.prune(runner, policy, now) == 2
    left = {str(r.id) for r in await StorageVolumeBackup.filter(storage_volume_id=volume)}
    assert left == {ids[2], ids[3], ids[4], ids[5]}
    assert not runner.runner.artifact_path(ids[0]).exists()
    assert not runner.runner.artifact_path(ids[1]).exists()
    assert all(runner.runner.artifact_path(i).exists() for i in ids[2:])
    events = await audit_events(coordinator, admin_token, aggregateId=volume)
    pruned = [e for e in events if e["eventType"] == "storage-volume.backup-pruned"]
    assert sorted(e["payload"]["backupId"] for e in pruned) == ids[:2]
    assert {e["payload"]["policyId"] for e in pruned} == {policy.id}
    assert await volume_policies.prune(runner, policy, now) == 0


async def test_a_backup_target_a_volume_policy_writes_to_cannot_be_deleted(
    coordinator: Coordinator, admin_token: str
) -> None:
    volume = await _volume(coordinator, admin_token)
    target = {
        "name": "offsite",
        "endpointUrl": "https://s3.example.com",
        "bucket": "berth-backups",
        "accessKeyId": "AKIAEXAMPLE",
        "secretAccessKey": "not-shown",
    }
    status, created_target, _ = await coordinator.call(
        "POST", "/backup-targets", token=admin_token, json=target
    )
    assert status == 201, created_target
    target_id = created_target["id"]
    body = {"storageVolumeId": volume, "retentionDays": 3, "scheduleIntervalHours": 1}
    status, created, _ = await _post(
        coordinator, admin_token, {**body, "backupTargetId": target_id}
    )
    assert status == 200, created
    policy = await StorageVolumeBackupPolicy.get(id=created["id"])
    assert policy.next_run_at is not None
    runner = coordinator.app[VOLUME_RUNNER_KEY]
    [taken] = await volume_policies.run_due(runner, policy.next_run_at + timedelta(seconds=1))
    row = await StorageVolumeBackup.get(id=taken)
    assert (row.backup_target_id, row.target) == (target_id, "s3")
    error = assert_error(
        await coordinator.call("DELETE", f"/backup-targets/{target_id}", token=admin_token),
        409,
        "conflict",
    )
    assert error["details"]["backupPolicies"] == 1


async def test_the_cli_sets_lists_and_shows_a_volume_policy(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    volume = await _volume(coordinator, admin_token)
    cli = Cli(coordinator, admin_token, tmp_path / "config")
    refused = await cli("volumes", "policy", "set", volume, "--every", "0", "--keep-days", "1")
    assert refused.exit_code != 0
    assert "scheduleIntervalHours" in refused.output
    assert await StorageVolumeBackupPolicy.all().count() == 0

    shown = await cli.json(
        "volumes", "policy", "set", "Data", "--every", "12", "--keep-days", "30", "--keep", "5",
        "--stop", "--no-retry",
    )  # fmt: skip
    policy = shown["policy"]
    assert (policy["storageVolumeId"], policy["scheduleIntervalHours"]) == (volume, 12)
    assert (policy["retentionDays"], policy["keepCount"], policy["stopResource"]) == (30, 5, True)
    assert (policy["retryOnFailure"], policy["enabled"]) == (False, True)
    assert shown == await cli.api(f"{PATH}/{policy['id']}")
    listing = await cli.ok("volumes", "policy", "list", "--volume", volume)
    assert policy["id"] in listing
    details = await cli.ok("volumes", "policy", "show", policy["id"])
    assert "Every (hours)" in details
    assert volume in details
    missing = await cli("volumes", "policy", "show", "vbp_none")
    assert missing.exit_code != 0
