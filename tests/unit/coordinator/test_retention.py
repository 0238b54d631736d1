"""Retention: deployment and log prunes keep current deployments and rollback candidates, and a
dry run reports exactly what the real run removes; retention defaults drive the scheduled prune."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coordinator.db import models
from coordinator.ids import new_id
from tests.harness import Coordinator, eventually, serving
from tests.unit.coordinator.support import assert_error


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _organization() -> str:
    first = await models.AuditEvent.all().order_by("id").first()
    assert first is not None
    assert first.organization_id
    return first.organization_id


async def _deployment(org: str, status: str, created: datetime, **extra: Any) -> str:
    row = await models.Deployment.create(
        id=new_id("dep"), organization_id=org, project_id="prj_x", environment_id="env_x",
        resource_id="res_x", server_id="srv_x", status=status, created_at=created,
        finished_at=created + timedelta(seconds=5), **extra,
    )  # fmt: skip
    return row.id


async def _lines(deployment_id: str, count: int) -> None:
    for n in range(1, count + 1):
        _ = await models.DeploymentLog.create(
            deployment_id=deployment_id, sequence=n, timestamp=datetime.now(UTC),
            phase="run", level="info", message=f"line {n}",
        )  # fmt: skip


async def test_history_prunes_guard_rollback_candidates_and_dry_runs_match(
    coordinator: Coordinator, admin_token: str
) -> None:
    org = await _organization()
    base = datetime.now(UTC) - timedelta(days=10)
    failed_old = await _deployment(org, "failed", base - timedelta(hours=1))
    rolled_back = await _deployment(org, "rolled-back", base - timedelta(minutes=30))
    succeeded = [
        await _deployment(org, "succeeded", base + timedelta(minutes=i)) for i in range(22)
    ]
    # The newest succeeded deployment rolled back the earlier one: that one stays too.
    succeeded.append(
        await _deployment(
            org, "succeeded", base + timedelta(minutes=22), rollback_of_deployment_id=rolled_back
        )
    )
    running = await _deployment(org, "running", datetime.now(UTC))
    await _lines(succeeded[0], 2)
    await _lines(failed_old, 3)
    await _lines(succeeded[5], 1)
    removable = {succeeded[0], succeeded[1], failed_old}
    guarded = {*succeeded[2:], rolled_back}

    async def prune(path: str, **body: Any) -> dict[str, Any]:
        status, answer, _ = await coordinator.call(
            "POST", path, token=admin_token,
            json={"before": _z(datetime.now(UTC) - timedelta(days=1)), **body},
        )  # fmt: skip
        assert status == 200, answer
        return dict(answer)

    dry_logs = await prune("/deployments/logs/prune")
    assert dry_logs["schemaVersion"] == "deployments.logs.prune/v1"
    assert (dry_logs["dryRun"], dry_logs["matchedCount"], dry_logs["prunedCount"]) == (True, 5, 0)
    assert set(dry_logs["affectedDeploymentIds"]) == {succeeded[0], failed_old}
    assert await models.DeploymentLog.all().count() == 6
    real_logs = await prune("/deployments/logs/prune", dryRun=False)
    assert (real_logs["matchedCount"], real_logs["prunedCount"]) == (5, 5)
    assert real_logs["affectedDeploymentIds"] == dry_logs["affectedDeploymentIds"]
    left: list[Any] = await models.DeploymentLog.all().values_list("deployment_id", flat=True)
    assert left == [succeeded[5]]

    dry = await prune("/deployments/prune")
    assert dry["schemaVersion"] == "deployments.prune/v1"
    assert set(dry["affectedDeploymentIds"]) == removable
    assert set(dry["guardedDeploymentIds"]) == guarded
    assert (dry["matchedCount"], dry["prunedCount"], dry["guardedCount"]) == (3, 0, 22)
    assert await models.Deployment.all().count() == 26
    real = await prune("/deployments/prune", dryRun=False)
    assert real["affectedDeploymentIds"] == dry["affectedDeploymentIds"]
    assert (real["matchedCount"], real["prunedCount"]) == (3, 3)
    ids: list[Any] = await models.Deployment.all().values_list("id", flat=True)
    remaining = {str(i) for i in ids}
    assert remaining == guarded | {running}
    again = await prune("/deployments/prune", dryRun=False)
    assert (again["matchedCount"], again["prunedCount"]) == (0, 0)

    assert_error(
        await coordinator.call(
            "POST", "/deployments/prune", token=admin_token, json={"before": "yesterday"}
        ),
        400,
        "invalid_request",
    )
    assert_error(
        await coordinator.call(
            "POST",
            "/deployments/logs/prune",
            token=admin_token,
            json={"before": "2026-02-30T00:00:00Z"},
        ),
        400,
        "invalid_request",
    )


@pytest.fixture
async def scheduled(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """The scheduled retention prune every 0.2 s."""
    async with serving(
        tmp_path / "scheduled", database_url, retention_prune_interval_seconds=0.2
    ) as harness:
        yield harness


async def test_retention_defaults_drive_the_scheduled_prune(scheduled: Coordinator) -> None:
    coordinator = scheduled
    token = await coordinator.bootstrap()
    org = await _organization()

    async def post(body: dict[str, Any]) -> tuple[int, Any]:
        status, answer, _ = await coordinator.call(
            "POST", "/retention-defaults", token=token, json=body
        )
        return status, answer

    for bad in (
        {"category": "provider-job-logs", "retentionDays": 5},
        {"category": "audit-rows", "retentionDays": 0},
        {"category": "nonsense", "retentionDays": 5},
        {"category": "audit-rows", "retentionDays": 5, "scope": "system"},
    ):
        status, answer = await post(bad)
        assert status == 400, (bad, answer)
    assert_error(
        await coordinator.call("GET", "/retention-defaults/audit-rows", token=token),
        404,
        "not_found",
    )

    old = datetime.now(UTC) - timedelta(days=3)
    _ = await models.AuditEvent.create(
        id=new_id("aud"), organization_id=org, actor_kind="system", event_type="old-thing",
        aggregate_type="thing", payload={}, occurred_at=old,
    )  # fmt: skip
    old_deployment = await _deployment(org, "failed", old - timedelta(days=30))
    await _deployment(org, "succeeded", datetime.now(UTC))
    await _lines(old_deployment, 4)

    status, created = await post(
        {"category": "audit-rows", "retentionDays": 2, "destructiveSchedulingEnabled": True}
    )
    assert status == 200, created
    # Deployment logs: reported by the schedule, not removed (dry-run scheduling only).
    status, _ = await post({"category": "deployment-logs", "retentionDays": 1})
    assert status == 200

    async def pruned() -> bool:
        return not await models.AuditEvent.filter(event_type="old-thing").exists()

    await eventually(pruned, what="the scheduled prune of old audit rows")
    assert await models.AuditEvent.filter(event_type="retention-defaults.configured").count() == 2

    async def reported() -> bool:
        status, shown, _ = await coordinator.call(
            "GET", "/retention-defaults/deployment-logs", token=token
        )
        assert status == 200, shown
        return shown["policy"]["lastRun"] is not None

    await eventually(reported, what="the dry-run report of deployment logs")
    status, shown, _ = await coordinator.call(
        "GET", "/retention-defaults/deployment-logs", token=token
    )
    assert shown["policy"]["lastRun"]["dryRun"] is True
    assert shown["policy"]["lastRun"]["matchedCount"] == 4
    assert await models.DeploymentLog.all().count() == 4
    status, listed, _ = await coordinator.call("GET", "/retention-defaults", token=token)
    assert [i["category"] for i in listed["items"]] == ["audit-rows", "deployment-logs"]
    assert listed["items"][0]["destructiveSchedulingEnabled"] is True
    assert_error(
        await coordinator.call("GET", "/retention-defaults/NOT_A_CATEGORY", token=token),
        404,
        "not_found",
    )
