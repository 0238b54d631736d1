"""Capacity routes against a scripted agent: inspect shape, prune protection and audit, 503/504."""

import asyncio
from datetime import UTC, datetime
from typing import Any

from coordinator.api import server_capacity
from coordinator.db import models
from coordinator.ids import new_id
from shared.messages.monitoring import (
    CapacityInspect,
    CapacityPrune,
    CapacityPruneResult,
    CapacityReport,
)
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator
from tests.unit.coordinator.schema_check import assert_matches_schema
from tests.unit.coordinator.support import assert_error, audit_events
from tests.unit.coordinator.test_projects_api import scoped_token
from tests.unit.coordinator.test_usage import deployment, resource

GIB = 1024**3


def report(re: int, frame_id: int) -> CapacityReport:
    """A plausible capacity report."""
    return CapacityReport.model_validate(
        {
            "id": frame_id,
            "re": re,
            "inspectedAt": datetime.now(UTC),
            "disk": [
                {
                    "path": "/",
                    "mount": "/",
                    "size": 100 * GIB,
                    "used": 97 * GIB,
                    "available": 3 * GIB,
                    "usePercent": 97.0,
                }
            ],
            "inodes": [{"path": "/", "mount": "/", "used": 10, "free": 90, "usePercent": 10.0}],
            "docker": {
                "imagesSize": 5 * GIB,
                "reclaimableImagesSize": GIB,
                "buildCacheSize": 0,
                "reclaimableBuildCacheSize": 0,
                "containersSize": 1000,
                "volumesSize": 2000,
            },
            "memory": {"total": 8 * GIB, "available": 6 * GIB, "used": 2 * GIB, "usePercent": 25},
            "cpu": {
                "logicalCores": 4,
                "load_average1m": 0.1,
                "load_average5m": 0.2,
                "load_average15m": 0.3,
            },
            "runtimeDirectories": {
                "stateRoot": {"path": "/var/lib/berth-agent", "size": 4096, "detectable": True}
            },
            "containers": [
                {
                    "id": "abc",
                    "name": "berth-web-1",
                    "running": False,
                    "status": "exited",
                    "writableBytes": 1000,
                    "deploymentId": "dep_x",
                }
            ],
            "safeReclaimableEstimate": {
                "stoppedContainersSize": 1000,
                "danglingImagesSize": GIB,
                "oldBuildCacheSize": 0,
                "oldWorkspaceCandidatesSize": 10,
                "total": GIB + 1010,
            },
            "warnings": [
                {"code": "full-disk", "message": "/ is 97% full", "mount": "/", "resource": "disk"}
            ],
        }
    )


async def test_inspect_through_the_agent(coordinator: Coordinator, admin_token: str) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "web-1")
    await agent.connect()
    call = asyncio.create_task(
        coordinator.call("GET", f"/servers/{agent.server_id}/capacity", token=admin_token)
    )
    request = await agent.expect(CapacityInspect)
    await agent.send(report(request.id, agent.next_id()))
    status, body, _ = await call
    assert status == 200, body
    assert body["schemaVersion"] == "servers.capacity.inspect/v1"
    assert_matches_schema("GET", "/servers/{serverId}/capacity", body)
    assert body["server"]["id"] == agent.server_id
    assert body["server"]["name"] == "web-1"
    assert body["disk"][0]["usePercent"] == 97.0
    assert body["memory"]["total"] == 8 * GIB
    assert body["cpu"]["loadAverage15m"] == 0.3
    assert body["appaloftRuntime"]["stateRoot"] == {
        "path": "/var/lib/berth-agent",
        "size": 4096,
        "detectable": True,
    }
    # Directories the (older) agent did not report are null, not invented.
    assert body["appaloftRuntime"]["sourceWorkspace"] is None
    assert "runtimeRoot" not in body["appaloftRuntime"]
    [container] = body["appaloftContainers"]
    assert container["serverId"] == agent.server_id
    assert container["artifactKind"] == "stopped-runtime"
    assert body["safeReclaimableEstimate"]["oldPreviewWorkspaceCandidatesSize"] == 10
    assert body["warnings"][0]["code"] == "full-disk"
    assert body["partial"] is False
    await agent.close()


async def test_offline_unknown_forbidden_and_silent(
    coordinator: Coordinator, admin_token: str, monkeypatch: Any
) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "web-1")
    path = f"/servers/{agent.server_id}/capacity"
    error = assert_error(await coordinator.call("GET", path, token=admin_token), 503, "unavailable")
    assert error["retriable"] is True
    assert_error(
        await coordinator.call("POST", f"{path}/prune", token=admin_token, json={}),
        503,
        "unavailable",
    )
    assert_error(
        await coordinator.call("GET", "/servers/srv_missing/capacity", token=admin_token),
        404,
        "not_found",
    )
    reader = await scoped_token(coordinator, admin_token, ["capacity:read"])
    assert_error(
        await coordinator.call("POST", f"{path}/prune", token=reader, json={}), 403, "forbidden"
    )
    assert_error(
        await coordinator.call(
            "POST", f"{path}/prune", token=admin_token, json={"categories": ["volumes"]}
        ),
        400,
        "invalid_request",
    )
    # A connected agent that never answers: 504 after the (shortened) timeout.
    monkeypatch.setattr(server_capacity, "INSPECT_TIMEOUT_SECONDS", 0.3)
    await agent.connect()
    assert_error(await coordinator.call("GET", path, token=admin_token), 504, "timeout")
    await agent.close()


async def test_prune_protects_rollback_candidates_and_audits(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "web-1")
    await agent.connect()
    project = await models.Project.create(
        id=new_id("prj"),
        organization_id=(await models.Organization.first()).id,  # type: ignore[union-attr]
        name="shop",
        slug="shop",
        created_at=datetime.now(UTC),
    )
    environment = await models.Environment.create(
        id=new_id("env"), project_id=project.id, name="production", created_at=datetime.now(UTC)
    )
    web = await resource(project.id, environment.id, "web")
    succeeded = [
        await deployment(project.id, environment.id, web, agent.server_id, "succeeded")
        for _ in range(3)
    ]
    failed = await deployment(project.id, environment.id, web, agent.server_id, "failed")
    running = await deployment(project.id, environment.id, web, agent.server_id, "running")

    async def prune(body: dict[str, Any], result: dict[str, Any]) -> tuple[Any, CapacityPrune]:
        call = asyncio.create_task(
            coordinator.call(
                "POST", f"/servers/{agent.server_id}/capacity/prune", token=admin_token, json=body
            )
        )
        request = await agent.expect(CapacityPrune)
        await agent.send(
            CapacityPruneResult.model_validate(
                {
                    "id": agent.next_id(),
                    "re": request.id,
                    "dryRun": request.dry_run,
                    "prunedAt": datetime.now(UTC),
                    **result,
                }
            )
        )
        status, answer, _ = await call
        assert status == 200, answer
        return answer, request

    candidate = {
        "id": "abc",
        "category": "stopped-containers",
        "target": "berth-web-old",
        "size": 1000,
        "action": "matched",
    }
    answer, request = await prune({}, {"matchedCount": 1, "candidates": [candidate]})
    assert request.dry_run is True
    assert set(request.categories) == {"stopped-containers", "dangling-images", "old-workspaces"}
    assert set(request.protected_deployment_ids) == {*succeeded, running}
    assert failed not in request.protected_deployment_ids
    assert answer["schemaVersion"] == "servers.capacity.prune/v1"
    assert answer["dryRun"] is True
    assert answer["summary"]["matchedCount"] == 1
    assert answer["summary"]["reportedCandidateCount"] == 1
    assert answer["candidates"][0]["action"] == "matched"
    assert answer["protectedDeploymentCount"] == 4

    def pruned_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["eventType"] == "server.capacity-pruned"]

    assert pruned_events(await audit_events(coordinator, admin_token)) == []  # dry runs aren't

    answer, request = await prune(
        {"dryRun": False, "categories": ["stopped-containers"], "before": "2026-01-01T00:00:00Z"},
        {
            "prunedCount": 1,
            "reclaimedBytes": 1000,
            "candidates": [{**candidate, "action": "pruned"}],
            "warnings": [
                "old-workspaces /var/lib/berth-agent/workspaces/w1: permission denied",
                "engine unreachable",
            ],
        },
    )
    assert request.dry_run is False
    assert request.categories == ["stopped-containers"]
    assert request.before is not None
    assert answer["summary"]["reclaimedBytes"] == 1000
    assert_matches_schema("POST", "/servers/{serverId}/capacity/prune", answer)
    # The agent's text warnings in the reference's shape: code, message, path, resource.
    assert answer["warnings"] == [
        {
            "code": "prune-failed",
            "message": "old-workspaces /var/lib/berth-agent/workspaces/w1: permission denied",
            "path": "/var/lib/berth-agent/workspaces/w1",
            "mount": None,
            "resource": "disk",
        },
        {
            "code": "prune-failed",
            "message": "engine unreachable",
            "path": None,
            "mount": None,
            "resource": "docker",
        },
    ]
    [event] = pruned_events(await audit_events(coordinator, admin_token))
    assert event["aggregateId"] == agent.server_id
    assert event["payload"]["reclaimedBytes"] == 1000
    await agent.close()
