"""Deployment engine against a scripted agent: plan delivery, progress, results, SSE, recovery."""

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from coordinator.db import models
from coordinator.ids import new_id
from shared.errors import ErrorBody, ErrorCode
from shared.messages import (
    DeployAccepted,
    DeployCancel,
    DeployCancelAck,
    DeployPlan,
    DeployResultAck,
    ErrorMessage,
    KnownDeployment,
)
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, eventually, scaled
from tests.unit.coordinator.support import audit_events
from tests.unit.coordinator.test_environments_api import create_environment, set_variable
from tests.unit.coordinator.test_projects_api import create_project

SECRET = "hunter2-Very-Secret-Value"
IMAGE_SOURCE = {"kind": "docker-image", "imageName": "berth-test/busybox", "imageTag": "latest"}
NETWORK = {"internalPort": 8080, "upstreamProtocol": "http", "exposureMode": "reverse-proxy"}


@dataclass
class World:
    """A project, environment, resource and an enrolled (not yet connected) fake agent."""

    project_id: str
    environment_id: str
    resource_id: str
    server_id: str
    agent: FakeAgent

    def target(self) -> dict[str, str]:
        """The create body / plan query."""
        return {
            "projectId": self.project_id,
            "environmentId": self.environment_id,
            "resourceId": self.resource_id,
            "serverId": self.server_id,
        }


async def make_world(
    coordinator: Coordinator,
    token: str,
    *,
    name: str = "shop",
    source: dict[str, Any] | None = IMAGE_SOURCE,
    network: dict[str, Any] | None = None,
) -> World:
    """Create the rows a deployment needs; the resource row is written directly."""
    project_id = await create_project(coordinator, token, name)
    environment_id = await create_environment(coordinator, token, project_id, "production")
    status, body, _ = await set_variable(
        coordinator, token, environment_id, "DB_PASSWORD", SECRET, isSecret=True
    )
    assert status == 200, body
    status, body, _ = await set_variable(coordinator, token, environment_id, "MODE", "prod")
    assert status == 200, body
    resource = await models.Resource.create(
        id=new_id("res"),
        project_id=project_id,
        environment_id=environment_id,
        name="web",
        slug="web",
        source=source,
        network_profile=network or NETWORK,
        created_at=datetime.now(UTC),
    )
    agent = await FakeAgent.enroll(coordinator, token, f"{name}-server")
    return World(project_id, environment_id, resource.id, agent.server_id, agent)


async def create_deployment(coordinator: Coordinator, token: str, world: World) -> str:
    """``POST /deployments``; returns the id."""
    status, body, _ = await coordinator.call(
        "POST", "/deployments", token=token, json=world.target()
    )
    assert status == 201, body
    return str(body["id"])


async def deployment(coordinator: Coordinator, token: str, deployment_id: str) -> dict[str, Any]:
    """The ``deployment`` item of ``deployments.show/v1``."""
    status, body, _ = await coordinator.call("GET", f"/deployments/{deployment_id}", token=token)
    assert status == 200, body
    return dict(body["deployment"])


async def wait_status(
    coordinator: Coordinator, token: str, deployment_id: str, wanted: str
) -> dict[str, Any]:
    """Poll until the deployment has status ``wanted``; return the item."""
    seen: dict[str, Any] = {}

    async def check() -> bool:
        seen.update(await deployment(coordinator, token, deployment_id))
        return bool(seen["status"] == wanted)

    await eventually(check, timeout=10, what=f"status {wanted}")
    return seen


async def accept(world: World, plan: DeployPlan, **extra: Any) -> None:
    """Answer a plan with ``deploy_accepted``."""
    await world.agent.send(
        DeployAccepted(
            id=world.agent.next_id(), re=plan.id, deployment_id=plan.deployment_id, **extra
        )
    )


async def run_to_success(
    coordinator: Coordinator, token: str, world: World, image_id: str = "sha256:" + "a" * 64
) -> str:
    """Create a deployment and drive it to ``succeeded`` with the fake agent (connected)."""
    deployment_id = await create_deployment(coordinator, token, world)
    plan = await world.agent.expect(DeployPlan)
    assert plan.deployment_id == deployment_id
    await accept(world, plan)
    await wait_status(coordinator, token, deployment_id, "running")
    re = await world.agent.result(deployment_id, "succeeded", imageId=image_id)
    ack = await world.agent.expect(DeployResultAck)
    assert ack.re == re
    await wait_status(coordinator, token, deployment_id, "succeeded")
    return deployment_id


async def events_of(
    coordinator: Coordinator, token: str, deployment_id: str
) -> list[dict[str, Any]]:
    """Every timeline event (``event`` of each envelope)."""
    status, body, _ = await coordinator.call(
        "GET", f"/deployments/{deployment_id}/events?historyLimit=200", token=token
    )
    assert status == 200, body
    assert all(e["schemaVersion"] == "deployments.stream-events/v1" for e in body["envelopes"])
    return [e["event"] for e in body["envelopes"]]


async def test_full_flow_with_logs_events_masking_and_duplicate_result(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    await world.agent.connect()
    deployment_id = await create_deployment(coordinator, admin_token, world)
    plan = await world.agent.expect(DeployPlan)
    # The plan is the only place the secret travels in clear text.
    assert plan.deployment_id == deployment_id
    assert plan.container.environment == {"DB_PASSWORD": SECRET, "MODE": "prod"}
    assert plan.container.secret_keys == ["DB_PASSWORD"]
    assert plan.artifact.kind == "image"
    assert plan.artifact.image == "berth-test/busybox:latest"
    assert plan.container.internal_port == 8080
    assert plan.container.labels["berth.deployment-id"] == deployment_id
    assert plan.route is not None
    assert plan.route.hostnames == ["web.production.shop.localhost"]
    assert plan.health.port == 8080

    await accept(world, plan)
    running = await wait_status(coordinator, admin_token, deployment_id, "running")
    assert running["startedAt"] is not None

    line_one = {"sequence": 1, "message": "pulling image", "event": "phase-started"}
    leaked = {"sequence": 2, "message": f"connecting with password {SECRET}", "level": "warn"}
    await world.agent.progress(deployment_id, line_one, leaked)
    await world.agent.progress(deployment_id, line_one)  # a replay after a reconnect
    await world.agent.progress(deployment_id, {"sequence": 3, "message": "started"})

    async def three_lines() -> bool:
        _, body, _ = await coordinator.call(
            "GET", f"/deployments/{deployment_id}/logs", token=admin_token
        )
        return len(body["logs"]) == 3

    await eventually(three_lines, timeout=10, what="three log lines")
    re = await world.agent.result(deployment_id, "succeeded", imageId="sha256:" + "b" * 64)
    assert (await world.agent.expect(DeployResultAck)).re == re
    done = await wait_status(coordinator, admin_token, deployment_id, "succeeded")
    assert done["artifact"]["imageId"] == "sha256:" + "b" * 64
    assert done["finishedAt"] is not None

    status, body, _ = await coordinator.call(
        "GET", f"/deployments/{deployment_id}/logs", token=admin_token
    )
    assert status == 200
    logs = body["logs"]
    assert [ln["message"] for ln in logs] == [
        "pulling image",
        "connecting with password ****",
        "started",
    ]
    assert [ln["masked"] for ln in logs] == [False, True, False]
    assert set(logs[0]) == {
        "sequence",
        "timestamp",
        "source",
        "phase",
        "level",
        "message",
        "masked",
        "stream",
    }

    timeline = await events_of(coordinator, admin_token, deployment_id)
    assert [e["sequence"] for e in timeline] == list(range(1, len(timeline) + 1))
    assert [e["eventType"] for e in timeline] == [
        "deployment-requested",
        "planning-started",
        "plan-ready",
        "dispatched",
        "agent-accepted",
        "phase-started",
        "deployment-succeeded",
    ]
    assert [e["status"] for e in timeline][:3] == ["created", "planning", "planned"]

    # A duplicate result (even with another outcome) is acknowledged but changes nothing.
    re = await world.agent.result(deployment_id, "failed")
    assert (await world.agent.expect(DeployResultAck)).re == re
    assert (await deployment(coordinator, admin_token, deployment_id))["status"] == "succeeded"
    assert len(await events_of(coordinator, admin_token, deployment_id)) == len(timeline)

    # Secrets are masked in every read.
    reads = [
        f"/deployments/{deployment_id}",
        "/deployments",
        f"/deployments/{deployment_id}/logs",
        f"/deployments/{deployment_id}/events",
        f"/deployments/{deployment_id}/recovery-readiness",
        "/deployments/plan?" + "&".join(f"{k}={v}" for k, v in world.target().items()),
    ]
    for path in reads:
        status, body, _ = await coordinator.call("GET", path, token=admin_token)
        assert status == 200, (path, body)
        assert SECRET not in json.dumps(body), path
    shown = (await deployment(coordinator, admin_token, deployment_id))["environmentSnapshot"]
    assert {v["key"]: v["value"] for v in shown["variables"]} == {
        "DB_PASSWORD": "****",
        "MODE": "prod",
    }
    assert "sealed" not in json.dumps(shown)
    # The reference's typed sections carry the plan's real values.
    assert {v["key"]: v["exposure"] for v in shown["variables"]} == {
        "DB_PASSWORD": "runtime",
        "MODE": "runtime",
    }
    assert shown["environmentId"] == world.environment_id
    status, full, _ = await coordinator.call(
        "GET", f"/deployments/{deployment_id}", token=admin_token
    )
    assert status == 200, full
    plan = full["deployment"]["runtimePlan"]
    assert plan == full["snapshot"]["runtimePlan"]
    assert plan["execution"]["port"] == 8080
    assert plan["execution"]["healthCheckPath"] == "/"
    assert plan["execution"]["accessRoutes"][0]["domains"] == ["web.production.shop.localhost"]
    assert plan["source"] == {
        "kind": "docker-image",
        "locator": "berth-test/busybox",
        "displayName": None,
        "metadata": {},
    }
    assert plan["target"]["serverIds"] == [world.agent.server_id]
    assert full["relatedContext"]["server"]["id"] == world.agent.server_id
    assert full["relatedContext"]["server"]["providerKey"]
    assert SECRET not in json.dumps(await audit_events(coordinator, admin_token))
    stored = await models.Deployment.get(id=deployment_id)
    assert SECRET not in json.dumps(stored.environment_snapshot)
    await world.agent.close()


def _parse_sse(text: str) -> list[dict[str, str]]:
    frames = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
        if fields:
            frames.append(fields)
    return frames


async def _read_stream(coordinator: Coordinator, token: str, path: str, **headers: str) -> str:
    assert coordinator.http is not None
    async with coordinator.http.get(
        coordinator.url + path,
        headers={"Authorization": f"Bearer {token}", **headers},
        timeout=aiohttp.ClientTimeout(total=scaled(20)),
    ) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        return await response.text()


async def test_sse_stream_resumes_from_cursor_and_ends_at_terminal(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    await world.agent.connect()
    deployment_id = await create_deployment(coordinator, admin_token, world)
    plan = await world.agent.expect(DeployPlan)
    await accept(world, plan)
    await wait_status(coordinator, admin_token, deployment_id, "running")
    before = await events_of(coordinator, admin_token, deployment_id)
    assert len(before) == 5

    # A live reader resumed after event 2 (Last-Event-ID) gets 3.. exactly once, then ``end``.
    path = f"/deployments/{deployment_id}/events/stream?untilTerminal=true"
    live = asyncio.create_task(
        _read_stream(coordinator, admin_token, path, **{"Last-Event-ID": "2"})
    )
    await world.agent.progress(
        deployment_id, {"sequence": 1, "message": "up", "event": "health-passed"}
    )
    await world.agent.result(deployment_id, "succeeded")
    frames = _parse_sse(await asyncio.wait_for(live, scaled(20)))
    timeline = await events_of(coordinator, admin_token, deployment_id)
    assert len(timeline) == 7
    events = [f for f in frames if f["event"] == "deployment-event"]
    assert [f["id"] for f in events] == [str(n) for n in range(3, 8)]
    assert [json.loads(f["data"])["event"]["sequence"] for f in events] == list(range(3, 8))
    assert frames[-1]["event"] == "end"
    assert json.loads(frames[-1]["data"]) == {"deploymentId": deployment_id, "status": "succeeded"}

    # A finished deployment resumed from a cursor: only the missing events, then ``end``.
    frames = _parse_sse(await _read_stream(coordinator, admin_token, path + "&cursor=5"))
    assert [f.get("id") for f in frames] == ["6", "7", None]
    await world.agent.close()


async def test_restart_between_create_and_connect_delivers_the_plan_once(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    deployment_id = await create_deployment(coordinator, admin_token, world)
    item = await deployment(coordinator, admin_token, deployment_id)
    assert item["status"] == "planned"
    types = [e["eventType"] for e in await events_of(coordinator, admin_token, deployment_id)]
    assert types[-1] == "waiting-for-agent"

    await coordinator.restart()
    await world.agent.connect()
    plan = await world.agent.expect(DeployPlan)
    assert plan.deployment_id == deployment_id
    await accept(world, plan)
    await wait_status(coordinator, admin_token, deployment_id, "running")
    assert world.agent.count(DeployPlan) == 1

    # Reconnecting with the deployment in the inventory: nothing is resent, it keeps running.
    await world.agent.close()
    await world.agent.connect(
        inventory=[KnownDeployment(deployment_id=deployment_id, state="running")]
    )
    await world.agent.progress(deployment_id, {"sequence": 1, "message": "still here"})

    async def logged() -> bool:
        item = await deployment(coordinator, admin_token, deployment_id)
        return bool(item["logCount"] == 1)

    await eventually(logged, timeout=10, what="the progress line")
    assert world.agent.count(DeployPlan) == 0  # an acknowledged plan is never resent
    assert (await deployment(coordinator, admin_token, deployment_id))["status"] == "running"

    # An agent that lost it (empty inventory): the deployment fails with a clear code.
    await world.agent.close()
    await world.agent.connect(inventory=[])
    failed = await wait_status(coordinator, admin_token, deployment_id, "failed")
    assert failed["errorCode"] == "agent-lost-deployment"
    await world.agent.close()


async def test_cancel_before_and_after_the_agent_took_the_plan(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    first = await create_deployment(coordinator, admin_token, world)
    status, body, _ = await coordinator.call(
        "POST", f"/deployments/{first}/cancel", token=admin_token, json={"confirm": first}
    )
    assert status == 200, body
    assert body["status"] == "canceled"
    assert body["canceledAt"] is not None

    await world.agent.connect()
    second = await create_deployment(coordinator, admin_token, world)
    plan = await world.agent.expect(DeployPlan)
    assert plan.deployment_id == second  # the canceled one is never sent
    await accept(world, plan)
    await wait_status(coordinator, admin_token, second, "running")
    status, body, _ = await coordinator.call(
        "POST", f"/deployments/{second}/cancel", token=admin_token, json={"confirm": second}
    )
    assert status == 200, body
    assert body["status"] == "cancel-requested"
    cancel = await world.agent.expect(DeployCancel)
    assert cancel.deployment_id == second
    await world.agent.send(
        DeployCancelAck(
            id=world.agent.next_id(), re=cancel.id, deployment_id=second, state="canceling"
        )
    )
    await world.agent.result(second, "canceled")
    await world.agent.expect(DeployResultAck)
    await wait_status(coordinator, admin_token, second, "canceled")
    events = await audit_events(coordinator, admin_token)
    cancels = [e for e in events if e["eventType"] == "deployment.cancel-requested"]
    assert [e["aggregateId"] for e in cancels] == [first, second]
    await world.agent.close()


async def test_retry_and_rollback_reuse_the_candidate_artifact_and_snapshot(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    await world.agent.connect()
    good_image = "sha256:" + "c" * 64
    good = await run_to_success(coordinator, admin_token, world, image_id=good_image)

    # The configuration changes: a new image and a new secret value.
    await models.Resource.filter(id=world.resource_id).update(
        source={**IMAGE_SOURCE, "imageTag": "v2"}
    )
    status, body, _ = await set_variable(
        coordinator,
        admin_token,
        world.environment_id,
        "DB_PASSWORD",
        "rotated-value",
        isSecret=True,
    )
    assert status == 200, body
    bad = await create_deployment(coordinator, admin_token, world)
    plan = await world.agent.expect(DeployPlan)
    assert plan.artifact.image == "berth-test/busybox:v2"
    await accept(world, plan)
    await world.agent.result(
        bad,
        "failed",
        error={"code": "runtime_failed", "message": "crashed", "retriable": True, "details": {}},
    )
    failed = await wait_status(coordinator, admin_token, bad, "failed")
    assert failed["errorMessage"] == "crashed"

    status, body, _ = await coordinator.call(
        "POST", f"/deployments/{bad}/retry", token=admin_token, json={}
    )
    assert status == 201, body
    retried = body["id"]
    plan = await world.agent.expect(DeployPlan)
    assert plan.deployment_id == retried
    item = await deployment(coordinator, admin_token, retried)
    assert (item["triggerKind"], item["sourceDeploymentId"]) == ("retry", bad)
    await accept(world, plan)
    await world.agent.result(retried, "failed")
    await wait_status(coordinator, admin_token, retried, "failed")

    status, body, _ = await coordinator.call(
        "GET", f"/deployments/{retried}/recovery-readiness", token=admin_token
    )
    assert status == 200, body
    assert body["rollback"]["recommendedCandidateId"] == good
    # The reference's recovery shape, filled from what Berth knows.
    candidate = next(c for c in body["rollback"]["candidates"] if c["deploymentId"] == good)
    assert candidate["sourceSummary"] == "docker-image berth-test/busybox"
    assert [
        (r["code"], r["relatedEntityType"], r["relatedEntityId"]) for r in candidate["reasons"]
    ] == [("candidate-image-available", "deployment", good)]
    retry_reason = body["retry"]["reasons"][0]
    assert (retry_reason["relatedEntityType"], retry_reason["relatedEntityId"]) == (
        "deployment",
        retried,
    )
    actions = {a["targetOperation"]: a for a in body["recommendedActions"]}
    assert actions["deployments.show"]["kind"] == "query"
    assert actions["deployments.show"]["safeByDefault"] is True
    assert actions["deployments.rollback"]["blockedReasonCode"] is None
    assert actions["deployments.rollback"]["safeByDefault"] is False
    assert actions["deployments.retry"]["blockedReasonCode"] is None  # the retry failed again
    status, body, _ = await coordinator.call(
        "POST",
        f"/deployments/{retried}/rollback",
        token=admin_token,
        json={"rollbackCandidateDeploymentId": good},
    )
    assert status == 201, body
    rollback = body["id"]
    plan = await world.agent.expect(DeployPlan)
    assert plan.deployment_id == rollback
    assert plan.artifact.kind == "image"
    assert plan.artifact.image == good_image  # no rebuild, no re-resolve: the exact image
    assert plan.container.environment["DB_PASSWORD"] == SECRET  # the candidate's snapshot
    item = await deployment(coordinator, admin_token, rollback)
    assert item["rollbackOfDeploymentId"] == retried
    assert item["rollbackCandidateDeploymentId"] == good
    await accept(world, plan)
    await world.agent.result(rollback, "succeeded")
    await wait_status(coordinator, admin_token, rollback, "succeeded")
    await wait_status(coordinator, admin_token, retried, "rolled-back")

    # A candidate that did not succeed is refused.
    status, body, _ = await coordinator.call(
        "POST",
        f"/deployments/{rollback}/rollback",
        token=admin_token,
        json={"rollbackCandidateDeploymentId": bad},
    )
    assert status == 409, body
    await world.agent.close()


async def test_a_refused_plan_fails_the_deployment_and_redeploy_starts_a_new_one(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    status, body, _ = await coordinator.call(
        "POST", f"/resources/{world.resource_id}/redeploy", token=admin_token, json={}
    )
    assert status == 409, body  # never deployed: nothing to redeploy
    await world.agent.connect()
    deployment_id = await create_deployment(coordinator, admin_token, world)
    plan = await world.agent.expect(DeployPlan)
    refusal = ErrorBody(
        code=ErrorCode.INVALID_MESSAGE, message="cannot run this plan", retriable=False
    )
    await world.agent.send(ErrorMessage(id=world.agent.next_id(), re=plan.id, error=refusal))
    failed = await wait_status(coordinator, admin_token, deployment_id, "failed")
    assert failed["errorCode"] == "invalid_message"
    assert "cannot run this plan" in failed["errorMessage"]

    status, body, _ = await coordinator.call(
        "POST", f"/resources/{world.resource_id}/redeploy", token=admin_token, json={}
    )
    assert status == 201, body
    again = await world.agent.expect(DeployPlan)
    assert again.deployment_id == body["id"]
    item = await deployment(coordinator, admin_token, body["id"])
    assert (item["triggerKind"], item["serverId"]) == ("redeploy", world.server_id)
    status, body, _ = await coordinator.call(
        "POST", "/resources/res_missing/redeploy", token=admin_token, json={}
    )
    assert status == 404, body
    await world.agent.close()
