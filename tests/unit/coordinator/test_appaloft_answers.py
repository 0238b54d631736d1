"""Real answers of the reshaped operations validate against their /openapi.json response schema."""

import asyncio
import json
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
    SECRET,
    World,
    accept,
    create_deployment,
    make_world,
    wait_status,
)
from tests.unit.coordinator.test_environments_api import set_variable


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
                    name="runtime",
                    status="passed",
                    message="1 of 1 container(s) running",
                    duration_ms=0,
                ),
                CheckResult(
                    name="health",
                    status="failed",
                    message="HTTP 503 from /",
                    duration_ms=2.5,
                    metadata={"container": "berth-web-1"},
                    status_code=503,
                    reason_code="health-check-status-mismatch",
                ),
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
    resource = f"/resources/{world.resource_id}"
    status, shown, _ = await coordinator.call("GET", resource, token=admin_token)
    assert (status, shown["diagnostics"]) == (200, [])  # nothing changed since the deployment
    bad = await create_deployment(coordinator, admin_token, world)
    await accept(world, await world.agent.expect(DeployPlan))
    error = {"code": "runtime_failed", "message": "crashed", "retriable": True, "details": {}}
    await world.agent.result(bad, "failed", error=error)
    await wait_status(coordinator, admin_token, bad, "failed")

    # Change a plain variable and rotate the secret after the last deployment: drift.
    env = world.environment_id
    assert (await set_variable(coordinator, admin_token, env, "MODE", "staging"))[0] == 200
    rotated = "rotated-Secret-Value-42"
    changed = await set_variable(
        coordinator, admin_token, env, "DB_PASSWORD", rotated, isSecret=True
    )
    assert changed[0] == 200
    status, shown, _ = await coordinator.call("GET", resource, token=admin_token)
    assert status == 200, shown
    drift = {d["configKey"]: d for d in shown["diagnostics"]}
    assert set(drift) == {"DB_PASSWORD", "MODE"}
    mode = drift["MODE"]
    assert (
        mode["resourceValue"]["displayValue"],
        mode["deploymentSnapshotValue"]["displayValue"],
    ) == (
        "staging",
        "prod",
    )
    assert (mode["latestDeploymentId"], mode["configKind"]) == (bad, "plain-config")
    secret = drift["DB_PASSWORD"]
    assert secret["configKind"] == "secret"
    assert secret["deploymentSnapshotValue"]["displayValue"] == "****"
    assert secret["resourceValue"] == {
        "state": "present",
        "displayValue": "****",
        "valueHash": None,
    }
    assert SECRET not in json.dumps(shown)
    assert rotated not in json.dumps(shown)

    now = datetime.now(UTC)
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

    health = asyncio.create_task(
        coordinator.call(
            "GET",
            f"{resource}/health",
            token=admin_token,
            headers={"X-Request-ID": "req-health-1"},
        )
    )
    await _probe_answered(world, now)
    status, body, _ = await health
    assert status == 200, body
    assert_matches_schema("GET", "/resources/{resourceId}/health", body)
    # The sections this answer fills are really there, not just allowed by the schema.
    assert body["latestDeployment"]["lastError"]["message"] == "crashed"
    assert body["latestRuntimeControl"]["operation"] == "stop"
    assert body["proxy"]["lastRouteRealizationDeploymentId"] == good
    assert body["publicAccess"]["status"] == "not-ready"  # the health check failed
    # The generated route is applied (the good deployment routed it) but the runtime behind it
    # is degraded: the route intent says so, with the probe as its observation.
    intent = body["publicAccess"]["routeIntentStatus"]
    assert intent["source"] == "generated-default-access"
    assert intent["intent"]["host"] == "web.production.shop.localhost"
    assert (intent["intent"]["protocol"], intent["tls"]) == ("http", "not-applicable")
    assert intent["context"]["deploymentId"] == good
    assert intent["context"]["serverId"] == world.server_id
    assert intent["proxy"] == {"intent": "required", "applied": "applied", "providerKey": "caddy"}
    assert (intent["runtimeHealth"], intent["blockingReason"], intent["recommendedAction"]) == (
        "degraded",
        "runtime_not_ready",
        "check-health",
    )
    assert intent["latestObservation"]["deploymentId"] == good
    assert intent["latestObservation"]["observedAt"] == body["observedAt"]
    assert intent["latestObservation"]["requestId"] == "req-health-1"
    assert intent["copySafeSummary"]["status"] == "blocked"
    # The agent's status code and reason reach the checks; phase and retriable follow from them.
    checks = [
        {k: c[k] for k in ("name", "status", "statusCode", "reasonCode", "phase", "retriable")}
        for c in body["checks"]
    ]
    assert checks == [
        {
            "name": "runtime",
            "status": "passed",
            "statusCode": None,
            "reasonCode": None,
            "phase": "runtime-state",
            "retriable": False,
        },
        {
            "name": "health",
            "status": "failed",
            "statusCode": 503,
            "reasonCode": "health-check-status-mismatch",
            "phase": "health-probe",
            "retriable": True,
        },
    ]

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
