"""Real answers of the reshaped operations validate against their /openapi.json response schema."""

import asyncio
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from shared.messages import (
    CheckResult,
    DeployPlan,
    ManagedContainer,
    ResourceProbe,
    ResourceProbeResult,
    RuntimeControl,
    RuntimeControlResult,
)
from tests.harness import Coordinator
from tests.unit.coordinator.schema_check import assert_matches_schema
from tests.unit.coordinator.test_deployment_engine import (
    World,
    accept,
    create_deployment,
    make_world,
    wait_status,
)


async def _probe_answered(world: World, now: datetime) -> None:
    probe = await world.agent.expect(ResourceProbe)
    container = ManagedContainer(
        container_id="c1",
        name="berth-web-1",
        resource_id=world.resource_id,
        deployment_id="dep_x",
        state="running",
        image="berth-test/busybox:latest",
    )
    await world.agent.send(
        ResourceProbeResult(
            id=world.agent.next_id(),
            re=probe.id,
            resource_id=world.resource_id,
            containers=[container],
            checks=[
                CheckResult(
                    name="health",
                    status="failed",
                    message="503",
                    duration_ms=2.5,
                    metadata={"container": "berth-web-1"},
                )
            ],
            observed_at=now,
        )
    )


async def test_reshaped_answers_match_their_schema(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    await world.agent.connect()
    good = await create_deployment(coordinator, admin_token, world)
    await accept(world, await world.agent.expect(DeployPlan))
    await world.agent.result(good, "succeeded")
    await wait_status(coordinator, admin_token, good, "succeeded")
    bad = await create_deployment(coordinator, admin_token, world)
    await accept(world, await world.agent.expect(DeployPlan))
    error = {"code": "runtime_failed", "message": "crashed", "retriable": True, "details": {}}
    await world.agent.result(bad, "failed", error=error)
    await wait_status(coordinator, admin_token, bad, "failed")

    now = datetime.now(UTC)
    resource = f"/resources/{world.resource_id}"
    stop = asyncio.create_task(
        coordinator.call("POST", f"{resource}/runtime/stop", token=admin_token, json={})
    )
    request = await world.agent.expect(RuntimeControl)
    await world.agent.send(
        RuntimeControlResult(
            id=world.agent.next_id(),
            re=request.id,
            resource_id=world.resource_id,
            operation="stop",
            status="succeeded",
            containers=[],
            started_at=now,
            completed_at=now,
        )
    )
    assert (await stop)[0] == 200

    health = asyncio.create_task(coordinator.call("GET", f"{resource}/health", token=admin_token))
    await _probe_answered(world, now)
    status, body, _ = await health
    assert status == 200, body
    assert_matches_schema("GET", "/resources/{resourceId}/health", body)
    # The sections this answer fills are really there, not just allowed by the schema.
    assert body["latestDeployment"]["lastError"]["message"] == "crashed"
    assert body["latestRuntimeControl"]["operation"] == "stop"
    assert body["proxy"]["lastRouteRealizationDeploymentId"] == good
    assert body["publicAccess"]["status"] == "not-ready"  # the health check failed

    reads = [
        ("/deployments", "/deployments"),
        (f"/deployments/{good}", "/deployments/{deploymentId}"),
        (f"/deployments/{bad}", "/deployments/{deploymentId}"),
        (
            f"/deployments/{bad}/recovery-readiness",
            "/deployments/{deploymentId}/recovery-readiness",
        ),
        ("/deployments/plan?" + urlencode(world.target()), "/deployments/plan"),
        ("/resources", "/resources"),
        (resource, "/resources/{resourceId}"),
        ("/audit-events", "/audit-events"),
    ]
    for url, path in reads:
        status, answer, _ = await coordinator.call("GET", url, token=admin_token)
        assert status == 200, (url, answer)
        assert_matches_schema("GET", path, answer)
    await world.agent.close()


def test_the_validator_catches_a_wrong_answer() -> None:
    wrong = {"schemaVersion": "audit-events.list/v1", "items": [{"auditEventId": 5}]}
    with pytest.raises(AssertionError, match="'eventType' is a required property"):
        assert_matches_schema("GET", "/audit-events", wrong)
