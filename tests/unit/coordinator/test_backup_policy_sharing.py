"""The code database and volume backup policies share (coordinator/backups/policy_store.py,
coordinator/api/backup_policy_answers.py) keeps each kind's own answer and audit payload: every
item field read off the stored row, each configured event with exactly its kind's fields, and
retention's busy rule and pruned events for database backups too."""

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.models import Model

from coordinator.api.dependency_backup_schemas import BackupPolicyItem, ConfigureBackupPolicyRequest
from coordinator.api.schemas import ApiRequest
from coordinator.api.storage_volume_policy_schemas import (
    ConfigureVolumeBackupPolicyRequest,
    VolumeBackupPolicyItem,
)
from coordinator.backups import RUNNER_KEY, policies, volume_policies
from coordinator.backups.policy_store import PolicySettings
from coordinator.db.backup_models import DependencyBackup, DependencyBackupPolicy
from coordinator.db.volume_policy_models import StorageVolumeBackupPolicy
from shared.wire import WireModel
from tests.harness import Coordinator
from tests.unit.coordinator.support import audit_events
from tests.unit.coordinator.test_backup_policies import _database
from tests.unit.coordinator.test_volume_backup_policies import _volume


def _item_as_stored(item: type[WireModel], row: Model) -> dict[str, Any]:
    """What the item of ``row`` must say, field by field, on the wire."""
    expected: dict[str, Any] = {}
    for name, field in item.model_fields.items():
        if name == "schema_version":
            expected["schemaVersion"] = field.default
            continue
        value = getattr(row, name)
        if name == "version":
            value = str(value)
        expected[field.alias or name] = value
    return expected


def _as_wire(answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` with its timestamps read back into datetimes, to compare with the row's."""
    return {
        key: datetime.fromisoformat(value) if key.endswith("At") and value else value
        for key, value in answer.items()
    }


async def _configured(
    coordinator: Coordinator, token: str, path: str, body: dict[str, Any]
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Configure a policy through the API: its id, its shown item and the listed items."""
    status, created, _ = await coordinator.call("POST", path, token=token, json=body)
    assert status == 200, created
    status, shown, _ = await coordinator.call("GET", f"{path}/{created['id']}", token=token)
    assert status == 200, shown
    status, listed, _ = await coordinator.call("GET", path, token=token)
    assert status == 200, listed
    return created["id"], _as_wire(shown["policy"]), [_as_wire(i) for i in listed["items"]]


async def _configured_payload(
    coordinator: Coordinator, token: str, row: DependencyBackupPolicy | StorageVolumeBackupPolicy
) -> Any:
    """The payload of the one configured event of ``row``'s owner, without its scope keys
    (checked here against the row's)."""
    if isinstance(row, DependencyBackupPolicy):
        owner = row.dependency_resource_id
    else:
        owner = row.storage_volume_id
    events = await audit_events(coordinator, token, aggregateId=owner)
    [event] = [e for e in events if e["eventType"].endswith(".backup-policy-configured")]
    payload = dict(event["payload"])
    scope = {key: payload.pop(key) for key in ("projectId", "environmentId", "policyId")}
    assert scope == {
        "projectId": row.project_id,
        "environmentId": row.environment_id,
        "policyId": row.id,
    }
    return payload


async def test_a_database_policy_answers_and_audits_its_own_fields(
    coordinator: Coordinator, admin_token: str
) -> None:
    db = await _database(coordinator, admin_token)
    body = {
        "dependencyResourceId": db,
        "retentionDays": 9,
        "scheduleIntervalHours": 4,
        "keepCount": 3,
        "retryOnFailure": False,
        "enabled": False,
        "verifyAfterBackup": True,
    }
    path = "/dependency-resources/backup-policies"
    policy_id, shown, listed = await _configured(coordinator, admin_token, path, body)
    assert policy_id.startswith("bkp_")
    row = await DependencyBackupPolicy.get(id=policy_id)
    assert (row.retry_on_failure, row.provider_key, row.keep_count) == (False, "berth-docker", 3)
    assert row.verify_after_backup is True
    assert shown == _item_as_stored(BackupPolicyItem, row)
    assert shown["verifyAfterBackup"] is True
    assert listed == [shown]
    # The database policy's event leaves retryOnFailure out (as it always did).
    assert await _configured_payload(coordinator, admin_token, row) == {
        "scheduleIntervalHours": 4,
        "retentionDays": 9,
        "keepCount": 3,
        "enabled": False,
        "backupTargetId": None,
        "verifyAfterBackup": True,
    }


async def test_a_volume_policy_answers_and_audits_its_own_fields(
    coordinator: Coordinator, admin_token: str
) -> None:
    volume = await _volume(coordinator, admin_token)
    body = {
        "storageVolumeId": volume,
        "retentionDays": 5,
        "scheduleIntervalHours": 2,
        "retryOnFailure": False,
        "stopResource": True,
    }
    path = "/storage-volumes/backup-policies"
    policy_id, shown, listed = await _configured(coordinator, admin_token, path, body)
    assert policy_id.startswith("vbp_")
    row = await StorageVolumeBackupPolicy.get(id=policy_id)
    assert (row.retry_on_failure, row.stop_resource, row.keep_count) == (False, True, None)
    assert shown == _item_as_stored(VolumeBackupPolicyItem, row)
    assert shown["verifyAfterBackup"] is False
    assert listed == [shown]
    assert await _configured_payload(coordinator, admin_token, row) == {
        "scheduleIntervalHours": 2,
        "retentionDays": 5,
        "keepCount": None,
        "retryOnFailure": False,
        "enabled": True,
        "stopResource": True,
        "backupTargetId": None,
        "verifyAfterBackup": False,
    }


async def test_database_retention_spares_busy_backups_and_audits_each_pruned_one(
    coordinator: Coordinator, admin_token: str
) -> None:
    db = await _database(coordinator, admin_token)
    runner = coordinator.app[RUNNER_KEY]
    body = {"dependencyResourceId": db, "retentionDays": 3, "scheduleIntervalHours": 24}
    path = "/dependency-resources/backup-policies"
    status, created, _ = await coordinator.call("POST", path, token=admin_token, json=body)
    assert status == 200, created
    policy = await DependencyBackupPolicy.get(id=created["id"])
    now = datetime.now(UTC)
    busy: tuple[dict[str, Any], ...] = (
        {},
        {"restore_status": "pending"},
        {"verification_status": "pending"},
        {},
    )
    ids = [f"dbk_old{index}" for index in range(len(busy))]
    for backup_id, status_of in zip(ids, busy, strict=True):
        _ = await DependencyBackup.create(
            id=backup_id,
            organization_id=policy.organization_id,
            project_id=policy.project_id,
            environment_id=policy.environment_id,
            dependency_resource_id=db,
            server_id="srv_x",
            dependency_kind="postgres",
            provider_key="berth-docker",
            status="failed" if backup_id == ids[3] else "ready",
            attempt_id="bka_x",
            requested_at=now - timedelta(days=4),
            created_at=now - timedelta(days=4),
            **status_of,
        )
        runner.artifact_path(backup_id).parent.mkdir(parents=True, exist_ok=True)
        runner.artifact_path(backup_id).write_bytes(b"x")

    assert await policies.prune(runner, policy, now) == 2
    left = {str(row.id) for row in await DependencyBackup.filter(dependency_resource_id=db)}
    assert left == {ids[1], ids[2]}
    assert [runner.artifact_path(i).exists() for i in ids] == [False, True, True, False]
    events = await audit_events(coordinator, admin_token, aggregateId=db)
    pruned = [e for e in events if e["eventType"] == "dependency-resource.backup-pruned"]
    assert sorted((e["payload"]["backupId"], e["aggregateType"]) for e in pruned) == [
        (ids[0], "dependency-resource"),
        (ids[3], "dependency-resource"),
    ]
    assert pruned[0]["payload"] == {
        "projectId": policy.project_id,
        "environmentId": policy.environment_id,
        "backupId": pruned[0]["payload"]["backupId"],
        "policyId": policy.id,
    }


def test_configure_bodies_and_service_requests_have_the_same_fields() -> None:
    pairs: list[tuple[type[ApiRequest], type[PolicySettings]]] = [
        (ConfigureBackupPolicyRequest, policies.PolicyRequest),
        (ConfigureVolumeBackupPolicyRequest, volume_policies.PolicyRequest),
    ]
    for body, request in pairs:
        assert set(body.model_fields) == {field.name for field in fields(request)}, body


def test_every_policy_item_field_is_a_stored_column() -> None:
    pairs: list[tuple[type[WireModel], type[Model]]] = [
        (BackupPolicyItem, DependencyBackupPolicy),
        (VolumeBackupPolicyItem, StorageVolumeBackupPolicy),
    ]
    for item, model in pairs:
        missing = set(item.model_fields) - {"schema_version"} - set(model._meta.fields_map)
        assert missing == set(), item
