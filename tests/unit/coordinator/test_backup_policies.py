"""Backup policies and the backup routes' rules through the API and the policy loop, without an
agent (a backup then fails ``unavailable``; tests/integration/test_backups_e2e.py has the agent).
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator.appkeys import KEYRING_KEY
from coordinator.backups import RUNNER_KEY, policies
from coordinator.db.backup_models import DependencyBackup, DependencyBackupPolicy
from coordinator.db.dependency_models import DependencyResource
from coordinator.db.models import Project
from coordinator.dependencies.realize import secret_binding
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.support import assert_error, audit_events
from tests.unit.coordinator.test_resources_api import workspace


async def _database(coordinator: Coordinator, token: str, kind: str = "postgres") -> str:
    """A managed, ready database row on a server without an agent."""
    project_id, environment_id = await workspace(coordinator, token)
    server = await coordinator.add_server(token, "db-1")
    row_id = f"dbr_{kind}{datetime.now(UTC).strftime('%H%M%S%f')}"
    sealed = coordinator.app[KEYRING_KEY].encrypt(
        f"{kind}://shop:pw@berth-dep-x:5432/shop", secret_binding(row_id, 1)
    )
    project = await _project_org(project_id)
    _ = await DependencyResource.create(
        id=row_id,
        organization_id=project,
        project_id=project_id,
        environment_id=environment_id,
        server_id=server["id"],
        name="Shop DB",
        slug=f"shop-db-{kind}",
        kind=kind,
        source_mode="appaloft-managed",
        provider_key="berth-docker",
        lifecycle_status="ready",
        image="postgres:16",
        host="berth-dep-x",
        port=5432,
        database_name="shop",
        username="shop",
        sealed_connection_url=sealed,
        created_at=datetime.now(UTC),
    )
    return row_id


async def _project_org(project_id: str) -> str:
    return str((await Project.get(id=project_id)).organization_id)  # type: ignore[attr-defined]


async def _post(coordinator: Coordinator, token: str, path: str, body: Any) -> Any:
    return await coordinator.call("POST", path, token=token, json=body)


async def test_policies_are_configured_listed_and_versioned(
    coordinator: Coordinator, admin_token: str
) -> None:
    db = await _database(coordinator, admin_token)
    path = "/dependency-resources/backup-policies"
    for bad in (
        {"dependencyResourceId": db, "retentionDays": 1, "scheduleIntervalHours": 0},
        {"dependencyResourceId": db, "retentionDays": 0, "scheduleIntervalHours": 1},
        {"dependencyResourceId": db, "retentionDays": 1},
        {"dependencyResourceId": db, "retentionDays": 1, "scheduleIntervalHours": 1, "x": 1},
    ):
        assert_error(await _post(coordinator, admin_token, path, bad), 400, "invalid_request")
    missing = {"dependencyResourceId": "dbr_none", "retentionDays": 1, "scheduleIntervalHours": 1}
    assert_error(await _post(coordinator, admin_token, path, missing), 404, "not_found")
    assert await DependencyBackupPolicy.all().count() == 0

    body = {"dependencyResourceId": db, "retentionDays": 7, "scheduleIntervalHours": 6}
    status, created, _ = await _post(coordinator, admin_token, path, body)
    assert status == 200, created
    status, shown, _ = await coordinator.call("GET", f"{path}/{created['id']}", token=admin_token)
    assert status == 200, shown
    policy = shown["policy"]
    assert shown["schemaVersion"] == "dependency-resource-backup-policies.show/v1"
    assert policy["schemaVersion"] == "dependency-resource-backup-policies.policy/v1"
    assert (policy["version"], policy["retentionDays"], policy["scheduleIntervalHours"]) == (
        "1",
        7,
        6,
    )
    assert (policy["enabled"], policy["retryOnFailure"], policy["lastRunAt"]) == (True, True, None)
    next_run = datetime.fromisoformat(policy["nextRunAt"])
    assert timedelta(hours=5.9) < next_run - datetime.now(UTC) <= timedelta(hours=6)

    again = {**body, "keepCount": 2, "enabled": False}
    status, replaced, _ = await _post(coordinator, admin_token, path, again)
    assert (status, replaced["id"]) == (200, created["id"])
    status, listed, _ = await coordinator.call("GET", f"{path}?enabledOnly=true", token=admin_token)
    assert (status, listed["items"]) == (200, [])
    status, listed, _ = await coordinator.call(
        "GET", f"{path}?dependencyResourceId={db}", token=admin_token
    )
    assert listed["schemaVersion"] == "dependency-resource-backup-policies.list/v1"
    [item] = listed["items"]
    assert (item["version"], item["keepCount"], item["enabled"]) == ("2", 2, False)

    await DependencyBackupPolicy.filter(id=created["id"]).update(organization_id="org_other")
    assert_error(
        await coordinator.call("GET", f"{path}/{created['id']}", token=admin_token),
        404,
        "not_found",
    )
    events = [e["eventType"] for e in await audit_events(coordinator, admin_token, aggregateId=db)]
    assert events.count("dependency-resource.backup-policy-configured") == 2


async def test_due_policies_back_up_retry_once_and_prune(
    coordinator: Coordinator, admin_token: str
) -> None:
    db = await _database(coordinator, admin_token)
    runner = coordinator.app[RUNNER_KEY]
    body = {"dependencyResourceId": db, "retentionDays": 3, "scheduleIntervalHours": 1}
    _, created, _ = await _post(
        coordinator, admin_token, "/dependency-resources/backup-policies", body
    )
    policy = await DependencyBackupPolicy.get(id=created["id"])
    assert policy.next_run_at is not None

    assert await policies.run_due(runner, policy.next_run_at - timedelta(seconds=1)) == []
    now = policy.next_run_at + timedelta(seconds=1)
    [first] = await policies.run_due(runner, now)

    async def failed(backup_id: str) -> bool:
        row = await DependencyBackup.get(id=backup_id)
        return row.status == "failed"

    # No agent: the backup fails (unavailable); the next look retries it once, not twice.
    await eventually(lambda: failed(first), what="the scheduled backup to fail")
    row = await DependencyBackup.get(id=first)
    assert row.failure_code == "unavailable"
    [retry] = await policies.run_due(runner, now)
    assert retry != first
    await eventually(lambda: failed(retry), what="the retry to fail")
    assert await policies.run_due(runner, now) == []
    policy = await DependencyBackupPolicy.get(id=created["id"])
    assert policy.last_run_at == now
    assert policy.next_run_at == now + timedelta(hours=1)

    # Retention: older than retentionDays goes, artifact first; keepCount keeps the newest.
    old = now - timedelta(days=4)
    ids: list[str] = []
    for age in (old, now - timedelta(hours=3), now - timedelta(hours=2), now - timedelta(hours=1)):
        backup_id = f"dbk_ready{len(ids)}"
        ids.append(backup_id)
        _ = await DependencyBackup.create(
            id=backup_id,
            organization_id=row.organization_id,
            project_id=row.project_id,
            environment_id=row.environment_id,
            dependency_resource_id=db,
            server_id=row.server_id,
            dependency_kind="postgres",
            provider_key="berth-docker",
            status="ready",
            attempt_id="bka_x",
            requested_at=age,
            created_at=age,
        )
        runner.artifact_path(backup_id).parent.mkdir(parents=True, exist_ok=True)
        runner.artifact_path(backup_id).write_bytes(b"x")
    await DependencyBackupPolicy.filter(id=created["id"]).update(keep_count=2)
    policy = await DependencyBackupPolicy.get(id=created["id"])
    assert await policies.prune(runner, policy, now) == 2
    left = {str(r.id) for r in await DependencyBackup.filter(dependency_resource_id=db)}
    assert left == {first, retry, ids[2], ids[3]}
    assert not runner.artifact_path(ids[0]).exists()
    assert not runner.artifact_path(ids[1]).exists()
    assert runner.artifact_path(ids[3]).exists()
    events = [e["eventType"] for e in await audit_events(coordinator, admin_token, aggregateId=db)]
    assert events.count("dependency-resource.backup-pruned") == 2
    assert events.count("dependency-resource.backup-requested") == 2


async def test_backup_routes_refuse_bad_input_with_the_envelope(
    coordinator: Coordinator, admin_token: str
) -> None:
    redis = await _database(coordinator, admin_token, kind="redis")
    assert_error(
        await _post(coordinator, admin_token, "/dependency-resources/dbr_none/backups", {}),
        404,
        "not_found",
    )
    db = redis
    await DependencyResource.filter(id=db).update(kind="postgres")
    assert_error(
        await _post(coordinator, admin_token, f"/dependency-resources/{db}/backups", {"x": 1}),
        400,
        "invalid_request",
    )
    await DependencyResource.filter(id=db).update(lifecycle_status="provisioning")
    assert_error(
        await _post(coordinator, admin_token, f"/dependency-resources/{db}/backups", {}),
        409,
        "conflict",
    )
    assert await DependencyBackup.all().count() == 0
    status, listed, _ = await coordinator.call(
        "GET", f"/dependency-resources/{db}/backups?status=bogus", token=admin_token
    )
    assert status == 400, listed


async def test_a_restart_fails_what_was_pending_and_removes_partial_files(
    coordinator: Coordinator, admin_token: str
) -> None:
    db = await _database(coordinator, admin_token)
    runner = coordinator.app[RUNNER_KEY]
    row = await DependencyResource.get(id=db)
    now = datetime.now(UTC)
    common: dict[str, Any] = {
        "organization_id": row.organization_id,
        "project_id": row.project_id,
        "environment_id": row.environment_id,
        "dependency_resource_id": db,
        "server_id": row.server_id,
        "dependency_kind": "postgres",
        "provider_key": "berth-docker",
        "attempt_id": "bka_x",
        "requested_at": now,
        "created_at": now,
    }
    _ = await DependencyBackup.create(id="dbk_pending", status="pending", **common)
    _ = await DependencyBackup.create(
        id="dbk_ready",
        status="ready",
        restore_status="pending",
        verification_status="pending",
        **common,
    )
    partial = runner.artifact_path("dbk_pending").with_suffix(".berthbk.partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"half")
    runner.artifact_path("dbk_ready").write_bytes(b"whole")

    await coordinator.restart()

    pending = await DependencyBackup.get(id="dbk_pending")
    assert (pending.status, pending.failure_code) == ("failed", "interrupted")
    ready = await DependencyBackup.get(id="dbk_ready")
    assert (ready.status, ready.restore_status, ready.verification_status) == (
        "ready",
        "failed",
        "failed",
    )
    assert ready.restore_failure_code == "interrupted"
    assert not partial.exists()
    assert runner.artifact_path("dbk_ready").exists()


async def test_a_policy_names_a_backup_target_for_its_scheduled_backups(
    coordinator: Coordinator, admin_token: str
) -> None:
    db = await _database(coordinator, admin_token)
    runner = coordinator.app[RUNNER_KEY]
    path = "/dependency-resources/backup-policies"
    body = {"dependencyResourceId": db, "retentionDays": 3, "scheduleIntervalHours": 1}
    error = assert_error(
        await _post(coordinator, admin_token, path, {**body, "backupTargetId": "bkt_none"}),
        404,
        "not_found",
    )
    assert error["details"]["field"] == "backupTargetId"
    assert await DependencyBackupPolicy.filter(dependency_resource_id=db).count() == 0
    target = {
        "name": "offsite",
        "endpointUrl": "https://s3.example.com",
        "bucket": "berth-backups",
        "accessKeyId": "AKIAEXAMPLE",
        "secretAccessKey": "not-shown",
    }
    status, created_target, _ = await _post(coordinator, admin_token, "/backup-targets", target)
    assert status == 201, created_target
    target_id = created_target["id"]
    status, created, _ = await _post(
        coordinator, admin_token, path, {**body, "backupTargetId": target_id}
    )
    assert status == 200, created
    status, shown, _ = await coordinator.call("GET", f"{path}/{created['id']}", token=admin_token)
    assert status == 200, shown
    assert shown["policy"]["backupTargetId"] == target_id
    policy = await DependencyBackupPolicy.get(id=created["id"])
    assert policy.next_run_at is not None
    [taken] = await policies.run_due(runner, policy.next_run_at + timedelta(seconds=1))
    row = await DependencyBackup.get(id=taken)
    assert row.backup_target_id == target_id
    assert row.target == "s3"
    # A target a policy writes to cannot be deleted.
    assert_error(
        await coordinator.call("DELETE", f"/backup-targets/{target_id}", token=admin_token),
        409,
        "conflict",
    )
