"""Deployments API: plan readiness, create validation (404/409/400/403), reads, runtime routes."""

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from coordinator.auth import hash_token
from coordinator.db import models
from coordinator.ids import new_id
from shared.messages import (
    ArchiveArtifact,
    CheckResult,
    DeployPlan,
    ManagedContainer,
    ResourceProbe,
    ResourceProbeResult,
    RuntimeControl,
    RuntimeControlResult,
)
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.schema_check import assert_matches_schema
from tests.unit.coordinator.support import assert_error, audit_events, problem_fields
from tests.unit.coordinator.test_deployment_engine import (
    World,
    accept,
    create_deployment,
    make_world,
    wait_status,
)
from tests.unit.coordinator.test_projects_api import scoped_token

PLAN_KEYS = {
    "schemaVersion", "context", "readiness", "source", "planner", "artifact", "commands",
    "network", "health", "access", "storage", "warnings", "unsupportedReasons", "nextActions",
    "generatedAt", "dependencyBindings",
}  # fmt: skip


async def plan(coordinator: Coordinator, token: str, target: dict[str, str]) -> dict[str, Any]:
    """``GET /deployments/plan``; asserts 200."""
    status, body, _ = await coordinator.call(
        "GET", "/deployments/plan?" + urlencode(target), token=token
    )
    assert status == 200, body
    return dict(body)


async def test_plan_is_ready_for_an_image_resource_and_warns_when_offline(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    body = await plan(coordinator, admin_token, world.target())
    assert set(body) == PLAN_KEYS
    assert body["schemaVersion"] == "deployments.plan/v1"
    assert body["readiness"] == {"status": "ready", "ready": True, "reasonCodes": []}
    assert body["context"]["resourceName"] == "web"
    assert body["artifact"]["image"] == "berth-test/busybox:latest"
    assert body["planner"]["buildStrategy"] == "prebuilt-image"
    assert body["network"]["hostnames"] == ["web.production.shop.localhost"]
    assert body["access"] == {
        "routeSource": "generated-default",
        "hostname": "web.production.shop.localhost",
        "scheme": "http",
        "routeCount": 1,
        "routeGroupCount": 1,
    }
    assert [w["code"] for w in body["warnings"]] == ["server-offline"]
    assert "never connected" in body["warnings"][0]["message"]
    assert body["warnings"][0]["fixPath"] == []  # starting the agent is not an API call
    assert body["warnings"][0]["evidence"] == [
        {"kind": "agent-link", "label": "agentLink", "value": "offline", "source": "coordinator"},
        {"kind": "agent-link", "label": "server.lastSeenAt", "value": "never", "source": "server"},
    ]
    await world.agent.connect()
    assert (await plan(coordinator, admin_token, world.target()))["warnings"] == []
    await world.agent.close()
    # Once it was seen, the warning says since when the agent is offline.
    warnings: list[dict[str, Any]] = []

    async def warned() -> bool:
        warnings[:] = (await plan(coordinator, admin_token, world.target()))["warnings"]
        return bool(warnings)

    await eventually(warned, what="the offline warning")
    assert warnings[0]["code"] == "server-offline"
    since = warnings[0]["message"].removeprefix("agent offline since ").split(";")[0]
    assert warnings[0]["message"].startswith("agent offline since "), warnings
    assert datetime.fromisoformat(since) <= datetime.now(UTC)
    # The evidence carries the same observed time as the message.
    assert warnings[0]["evidence"][1]["value"] == since


async def test_plan_reason_codes(coordinator: Coordinator, admin_token: str) -> None:
    world = await make_world(coordinator, admin_token, source=None)
    body = await plan(coordinator, admin_token, world.target())
    assert body["readiness"]["status"] == "blocked"
    assert body["readiness"]["reasonCodes"] == ["resource-source-missing"]
    assert body["unsupportedReasons"][0]["category"] == "blocked"
    assert body["unsupportedReasons"][0]["fixPath"] == [
        {
            "kind": "command",
            "targetOperation": "resources.configure-source",
            "label": "Configure the source",
            "profileField": "source",
            "docsAnchor": None,
            "safeByDefault": False,
        }
    ]
    assert body["unsupportedReasons"][0]["overridePath"] == []
    assert body["unsupportedReasons"][0]["evidence"] == [
        {"kind": "profile-field", "label": "source", "value": "not set", "source": "resource"}
    ]

    await models.Resource.filter(id=world.resource_id).update(
        source={"kind": "local-folder", "locator": "./web", "metadata": {}},
        network_profile={"internalPort": None, "exposureMode": "reverse-proxy"},
    )
    body = await plan(coordinator, admin_token, world.target())
    assert body["readiness"]["reasonCodes"] == [
        "resource-source-archive-missing",
        "network-port-missing",
    ]
    port = next(r for r in body["unsupportedReasons"] if r["code"] == "network-port-missing")
    # Each reason shows the values the planner read, not just the field's name.
    evidence = {r["code"]: r["evidence"] for r in body["unsupportedReasons"]}
    assert [(e["label"], e["value"]) for e in evidence["network-port-missing"]] == [
        ("networkProfile.exposureMode", "reverse-proxy"),
        ("networkProfile.internalPort", "not set"),
    ]
    assert [(e["label"], e["value"]) for e in evidence["resource-source-archive-missing"]] == [
        ("source.kind", "local-folder"),
        ("source.metadata.archiveId", "not set"),
    ]
    assert [(f["targetOperation"], f["profileField"]) for f in port["fixPath"]] == [
        ("resources.configure-network-profile", "networkProfile.internalPort")
    ]
    # No port, no route: the access summary says so instead of inventing a hostname.
    assert body["access"] == {
        "routeSource": None,
        "hostname": None,
        "scheme": None,
        "routeCount": 0,
        "routeGroupCount": 0,
    }

    other = await make_world(coordinator, admin_token, name="other")
    mismatch = {**world.target(), "resourceId": other.resource_id}
    mismatched = await plan(coordinator, admin_token, mismatch)
    assert mismatched["readiness"]["reasonCodes"] == ["resource-environment-mismatch"]
    assert [(e["label"], e["value"]) for e in mismatched["unsupportedReasons"][0]["evidence"]] == [
        ("resource.projectId", other.project_id),
        ("resource.environmentId", other.environment_id),
        ("environment.projectId", world.project_id),
    ]

    status, _, _ = await coordinator.call(
        "POST",
        f"/environments/{other.environment_id}/lock",
        token=admin_token,
        json={"reason": "freeze"},
    )
    assert status == 200
    await models.Server.filter(id=other.server_id).update(lifecycle_status="inactive")
    await models.Resource.filter(id=other.resource_id).update(lifecycle_status="archived")
    blocked = await plan(coordinator, admin_token, other.target())
    assert blocked["readiness"]["reasonCodes"] == [
        "environment-locked",
        "resource-archived",
        "server-inactive",
    ]
    assert [
        [(e["label"], e["value"], e["source"]) for e in r["evidence"]]
        for r in blocked["unsupportedReasons"]
    ] == [
        [
            ("environment.lifecycleStatus", "locked", "environment"),
            ("environment.lockReason", "freeze", "environment"),
        ],
        [("resource.lifecycleStatus", "archived", "resource")],
        [("server.lifecycleStatus", "inactive", "server")],
    ]


async def test_plan_and_create_validation(coordinator: Coordinator, admin_token: str) -> None:
    world = await make_world(coordinator, admin_token)
    for key in ("projectId", "environmentId", "resourceId", "serverId"):
        unknown = {**world.target(), key: "nope_123"}
        response = await coordinator.call(
            "GET", "/deployments/plan?" + urlencode(unknown), token=admin_token
        )
        assert_error(response, 404, "not_found")
        response = await coordinator.call("POST", "/deployments", token=admin_token, json=unknown)
        assert_error(response, 404, "not_found")
    error = assert_error(
        await coordinator.call("POST", "/deployments", token=admin_token, json={"projectId": "x"}),
        400,
        "invalid_request",
    )
    assert {"environmentId", "resourceId", "serverId"} <= problem_fields(error)
    assert_error(
        await coordinator.call("GET", "/deployments/plan", token=admin_token),
        400,
        "invalid_request",
    )
    reader = await scoped_token(coordinator, admin_token, ["deployments:read"])
    assert_error(
        await coordinator.call("POST", "/deployments", token=reader, json=world.target()),
        403,
        "forbidden",
    )
    nobody = await scoped_token(coordinator, admin_token, ["servers:read"])
    assert_error(await coordinator.call("GET", "/deployments", token=nobody), 403, "forbidden")
    assert_error(await coordinator.call("GET", "/deployments"), 401, "unauthorized")

    # Not ready: 409 with the reason codes, and nothing written.
    status, _, _ = await coordinator.call(
        "POST",
        f"/environments/{world.environment_id}/lock",
        token=admin_token,
        json={"reason": "audit"},
    )
    assert status == 200
    error = assert_error(
        await coordinator.call("POST", "/deployments", token=admin_token, json=world.target()),
        409,
        "conflict",
    )
    assert error["details"]["reasonCodes"] == ["environment-locked"]
    assert await models.Deployment.all().count() == 0
    assert not [
        e
        for e in await audit_events(coordinator, admin_token)
        if e["eventType"].startswith("deployment.")
    ]


async def test_one_deployment_in_flight_per_resource_and_server(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    first = await create_deployment(coordinator, admin_token, world)
    error = assert_error(
        await coordinator.call("POST", "/deployments", token=admin_token, json=world.target()),
        409,
        "conflict",
    )
    assert error["details"]["deploymentId"] == first
    assert await models.Deployment.all().count() == 1
    created = [
        e
        for e in await audit_events(coordinator, admin_token)
        if e["eventType"] == "deployment.created"
    ]
    assert [e["aggregateId"] for e in created] == [first]


async def test_list_count_show_and_filters(coordinator: Coordinator, admin_token: str) -> None:
    world = await make_world(coordinator, admin_token)
    other = await make_world(coordinator, admin_token, name="other")
    first = await create_deployment(coordinator, admin_token, world)
    second = await create_deployment(coordinator, admin_token, other)

    async def ids(query: str) -> list[str]:
        status, body, _ = await coordinator.call("GET", f"/deployments?{query}", token=admin_token)
        assert status == 200, body
        return [i["id"] for i in body["items"]]

    assert await ids("") == [second, first]
    assert await ids(f"resourceId={world.resource_id}") == [first]
    assert await ids(f"projectId={other.project_id}") == [second]
    assert await ids("status=planned&limit=1") == [second]
    assert await ids("statuses=succeeded&statuses=failed") == []
    assert await ids("statuses=planned,failed") == [second, first]
    assert_error(
        await coordinator.call("GET", "/deployments?status=bogus", token=admin_token),
        400,
        "invalid_request",
    )
    status, body, _ = await coordinator.call(
        "GET", f"/deployments/count?resourceId={world.resource_id}", token=admin_token
    )
    assert (status, body) == (200, {"count": 1})

    status, body, _ = await coordinator.call("GET", f"/deployments/{first}", token=admin_token)
    assert status == 200, body
    assert body["schemaVersion"] == "deployments.show/v1"
    assert body["status"]["current"] == "planned"
    assert body["relatedContext"]["resource"]["slug"] == "web"
    assert body["snapshot"]["runtimePlan"]["execution"]["port"] == 8080
    assert body["latestFailure"] is None
    assert "cancel" in body["nextActions"]
    assert_error(
        await coordinator.call("GET", "/deployments/dep_missing", token=admin_token),
        404,
        "not_found",
    )
    # A token scoped to the other project does not see this deployment.
    scoped = await scoped_token(
        coordinator, admin_token, ["deployments:read"], projectIds=[other.project_id]
    )
    assert_error(
        await coordinator.call("GET", f"/deployments/{first}", token=scoped), 404, "not_found"
    )
    status, body, _ = await coordinator.call("GET", "/deployments", token=scoped)
    assert [i["id"] for i in body["items"]] == [second]

    # Cancel needs the id as confirmation; a terminal deployment cannot be canceled again.
    error = assert_error(
        await coordinator.call(
            "POST", f"/deployments/{first}/cancel", token=admin_token, json={"confirm": "yes"}
        ),
        400,
        "invalid_request",
    )
    assert problem_fields(error) == {"confirm"}
    status, body, _ = await coordinator.call(
        "POST", f"/deployments/{first}/cancel", token=admin_token, json={"confirm": first}
    )
    assert (status, body["status"]) == (200, "canceled")
    assert_error(
        await coordinator.call(
            "POST", f"/deployments/{first}/cancel", token=admin_token, json={"confirm": first}
        ),
        409,
        "conflict",
    )
    # Retry of a succeeded-or-active deployment is refused; of a canceled one it works.
    assert_error(
        await coordinator.call("POST", f"/deployments/{second}/retry", token=admin_token, json={}),
        409,
        "conflict",
    )
    status, body, _ = await coordinator.call(
        "POST", f"/deployments/{first}/retry", token=admin_token, json={}
    )
    assert status == 201, body


async def test_archive_source_plans_a_build_with_a_download_token(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    archive = await models.SourceArchive.create(
        id=new_id("arc"),
        organization_id=(await models.Project.get(id=world.project_id)).organization_id,  # type: ignore[attr-defined]
        resource_id=world.resource_id,
        sha256="d" * 64,
        size_bytes=1234,
        created_at=datetime.now(UTC),
    )
    await models.Resource.filter(id=world.resource_id).update(
        source={"kind": "local-folder", "locator": "./web", "metadata": {"archiveId": archive.id}}
    )
    body = await plan(coordinator, admin_token, world.target())
    assert body["readiness"]["ready"] is True
    assert body["planner"]["buildStrategy"] == "dockerfile"
    await world.agent.connect()
    deployment_id = await create_deployment(coordinator, admin_token, world)
    sent = await world.agent.expect(DeployPlan)
    artifact = sent.artifact
    assert isinstance(artifact, ArchiveArtifact)
    assert (artifact.archive_id, artifact.sha256, artifact.size_bytes) == (
        archive.id,
        "d" * 64,
        1234,
    )
    assert artifact.image == f"berth/{world.resource_id}:{deployment_id}"
    assert artifact.download_path.endswith(archive.id)
    token = await models.ArchiveDownloadToken.get(token_hash=hash_token(artifact.download_token))
    assert (token.server_id, token.deployment_id) == (world.server_id, deployment_id)
    await world.agent.close()


async def test_runtime_control_and_health_without_an_agent(
    coordinator: Coordinator, admin_token: str
) -> None:
    world: World = await make_world(coordinator, admin_token)
    path = f"/resources/{world.resource_id}"
    assert_error(
        await coordinator.call("POST", f"{path}/runtime/stop", token=admin_token, json={}),
        409,
        "conflict",
    )
    status, body, _ = await coordinator.call("GET", f"{path}/health", token=admin_token)
    assert status == 200, body
    assert (body["overall"], body["latestDeployment"]) == ("not-deployed", None)

    await world.agent.connect()
    deployment_id = await create_deployment(coordinator, admin_token, world)
    await accept(world, await world.agent.expect(DeployPlan))
    await wait_status(coordinator, admin_token, deployment_id, "running")
    await world.agent.close()
    assert_error(
        await coordinator.call("POST", f"{path}/runtime/restart", token=admin_token, json={}),
        503,
        "unavailable",
    )
    status, body, _ = await coordinator.call("GET", f"{path}/health", token=admin_token)
    assert status == 200, body
    assert body["latestDeployment"]["id"] == deployment_id
    assert body["overall"] == "unknown"
    assert [e["source"] for e in body["sourceErrors"]] == ["runtime-target"]
    [error] = body["sourceErrors"]
    assert (error["relatedEntityId"], error["phase"]) == (world.server_id, "health-probe")
    assert body["latestRuntimeControl"] is None  # the restart never reached the agent
    # Still running (never succeeded): its route is planned, not served.
    assert (body["publicAccess"]["status"], body["publicAccess"]["url"]) == ("not-ready", None)
    assert body["proxy"]["reasonCode"] == "no-succeeded-deployment"
    intent = body["publicAccess"]["routeIntentStatus"]
    assert (intent["intent"]["host"], intent["context"]["deploymentId"]) == (
        "web.production.shop.localhost",
        deployment_id,
    )
    assert (intent["proxy"]["applied"], intent["blockingReason"], intent["recommendedAction"]) == (
        "not-configured",
        "proxy_route_not_applied",
        "deploy",
    )
    # The agent could not be asked: no observation, health unknown.
    assert (intent["latestObservation"], intent["runtimeHealth"]) == (None, "unknown")
    assert_error(
        await coordinator.call("GET", "/resources/res_missing/health", token=admin_token),
        404,
        "not_found",
    )


async def test_runtime_control_and_health_through_the_agent(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    await world.agent.connect()
    deployment_id = await create_deployment(coordinator, admin_token, world)
    await accept(world, await world.agent.expect(DeployPlan))
    await world.agent.result(deployment_id, "succeeded")
    await wait_status(coordinator, admin_token, deployment_id, "succeeded")
    now = datetime.now(UTC)
    container = ManagedContainer(
        container_id="c1",
        name="berth-web-1",
        resource_id=world.resource_id,
        deployment_id=deployment_id,
        state="exited",
        image="berth-test/busybox:latest",
    )
    path = f"/resources/{world.resource_id}"
    call = asyncio.create_task(
        coordinator.call("POST", f"{path}/runtime/stop", token=admin_token, json={})
    )
    request = await world.agent.expect(RuntimeControl)
    assert (request.resource_id, request.operation) == (world.resource_id, "stop")
    await world.agent.send(
        RuntimeControlResult(
            id=world.agent.next_id(),
            re=request.id,
            resource_id=world.resource_id,
            operation="stop",
            status="succeeded",
            containers=[container],
            started_at=now,
            completed_at=now,
        )
    )
    status, body, _ = await call
    assert status == 200, body
    assert (body["operation"], body["status"], body["runtimeState"]) == (
        "stop",
        "succeeded",
        "stopped",
    )
    events = await audit_events(coordinator, admin_token)
    assert "resource.runtime-stop" in [e["eventType"] for e in events]

    call = asyncio.create_task(coordinator.call("GET", f"{path}/health", token=admin_token))
    probe = await world.agent.expect(ResourceProbe)
    assert (probe.health_path, probe.health_port) == ("/", 8080)
    running = container.model_copy(update={"state": "running"})
    check = CheckResult(
        name="http",
        status="passed",
        message="200 OK",
        duration_ms=3.0,
        metadata={"container": "berth-web-1"},
    )
    await world.agent.send(
        ResourceProbeResult(
            id=world.agent.next_id(),
            re=probe.id,
            resource_id=world.resource_id,
            containers=[running],
            checks=[check],
            observed_at=now,
        )
    )
    status, body, _ = await call
    assert status == 200, body
    assert body["overall"] == "healthy"
    assert body["runtime"]["lifecycle"] == "running"
    assert [c["status"] for c in body["checks"]] == ["passed"]
    assert body["checks"][0]["metadata"] == {"container": "berth-web-1"}
    assert body["sourceErrors"] == []
    # The stop above, rebuilt from its audit event.
    control = body["latestRuntimeControl"]
    assert (control["operation"], control["status"], control["runtimeState"]) == (
        "stop",
        "succeeded",
        "stopped",
    )
    assert control["runtimeControlAttemptId"].startswith("rtc")
    assert datetime.fromisoformat(control["startedAt"]) == now
    assert control["phases"] == [{"phase": "stop", "status": "succeeded", "errorCode": None}]
    assert body["latestDeployment"]["id"] == deployment_id
    assert body["latestDeployment"]["lastError"] is None
    assert body["healthPolicy"]["status"] == "default"
    assert body["healthPolicy"]["port"] == 8080
    # The succeeded deployment's generated route is what the edge serves.
    intent = body["publicAccess"].pop("routeIntentStatus")
    assert (intent["blockingReason"], intent["recommendedAction"]) == (None, "none")
    assert intent["copySafeSummary"] == {
        "status": "available",
        "code": None,
        "phase": None,
        "message": "http://web.production.shop.localhost is served",
    }
    assert (intent["runtimeHealth"], intent["context"]["deploymentId"]) == (
        "healthy",
        deployment_id,
    )
    assert body["publicAccess"] == {
        "status": "ready",
        "url": "http://web.production.shop.localhost",
        "kind": "generated-default",
        "reasonCode": None,
        "phase": None,
        "latestAccessFailure": None,
    }
    assert body["proxy"] == {
        "status": "ready",
        "providerKey": "caddy",
        "lastRouteRealizationDeploymentId": deployment_id,
        "reasonCode": None,
    }
    status, shown, _ = await coordinator.call("GET", path, token=admin_token)
    assert status == 200, shown
    summary = shown["accessSummary"]
    assert summary == shown["resource"]["accessSummary"]
    assert (summary["proxyRouteStatus"], summary["lastRouteRealizationDeploymentId"]) == (
        "ready",
        deployment_id,
    )
    route = summary["latestGeneratedAccessRoute"]
    assert (route["url"], route["deploymentId"], route["targetPort"]) == (
        "http://web.production.shop.localhost",
        deployment_id,
        8080,
    )
    assert route["deploymentStatus"] == "succeeded"
    assert summary["plannedGeneratedAccessRoute"] == {
        "url": "http://web.production.shop.localhost",
        "hostname": "web.production.shop.localhost",
        "scheme": "http",
        "providerKey": "caddy",
        "pathPrefix": "/",
        "proxyKind": "edge",
        "targetPort": 8080,
    }
    assert shown["resource"]["latestRuntimeControl"] == control
    status, listed, _ = await coordinator.call("GET", "/resources", token=admin_token)
    assert status == 200, listed
    [item] = [i for i in listed["items"] if i["id"] == world.resource_id]
    assert item["latestRuntimeControl"] == control
    assert item["accessSummary"] == summary
    await world.agent.close()


async def test_a_deployment_records_the_dependency_bindings_it_was_given(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    body = await plan(coordinator, admin_token, world.target())
    assert body["dependencyBindings"] == {
        "status": "ready",
        "references": [],
        "runtimeInjection": {"status": "ready", "reason": "no dependency bindings"},
    }
    status, database, _ = await coordinator.call(
        "POST",
        "/dependency-resources/import",
        token=admin_token,
        json={
            "kind": "postgres",
            "projectId": world.project_id,
            "environmentId": world.environment_id,
            "name": "Shop DB",
            "connectionUrl": "postgres://shop:Very-Secret-pw@db.example.com:6543/shop",
        },
    )
    assert status == 201, database
    bindings = f"/resources/{world.resource_id}/dependency-bindings"
    status, bound, _ = await coordinator.call(
        "POST",
        bindings,
        token=admin_token,
        json={"dependencyResourceId": database["id"], "targetName": "DATABASE_URL"},
    )
    assert status == 201, bound
    reference = {
        "bindingId": bound["id"],
        "dependencyResourceId": database["id"],
        "kind": "postgres",
        "targetName": "DATABASE_URL",
        "scope": "environment",
        "injectionMode": "env",
        "snapshotReadiness": {
            "status": "ready",
            "reason": "captured in the deployment's environment snapshot",
        },
    }
    body = await plan(coordinator, admin_token, world.target())
    assert_matches_schema("GET", "/deployments/plan", body)
    assert body["dependencyBindings"] == {
        "status": "ready",
        "references": [reference],
        "runtimeInjection": {"status": "ready", "reason": "injected as env DATABASE_URL"},
    }

    deployment_id = await create_deployment(coordinator, admin_token, world)
    # Unbinding afterwards changes the next plan, not what this deployment was given.
    status, _, _ = await coordinator.call("DELETE", f"{bindings}/{bound['id']}", token=admin_token)
    assert status == 200
    assert (await plan(coordinator, admin_token, world.target()))["dependencyBindings"][
        "references"
    ] == []
    recorded = {
        **reference,
        "snapshotReadiness": {
            "status": "ready",
            "reason": "captured in this deployment's environment snapshot",
        },
    }
    status, shown, _ = await coordinator.call(
        "GET", f"/deployments/{deployment_id}", token=admin_token
    )
    assert status == 200, shown
    assert_matches_schema("GET", "/deployments/{deploymentId}", shown)
    assert shown["deployment"]["dependencyBindingReferences"] == [recorded]
    assert shown["snapshot"]["dependencyBindings"] == {
        "status": "ready",
        "references": [recorded],
        "runtimeInjection": {"status": "ready", "reason": "injected as env DATABASE_URL"},
    }
    assert "dependencyBindings" not in shown["snapshot"]["environmentSnapshot"]
    status, listed, _ = await coordinator.call(
        "GET", f"/deployments?resourceId={world.resource_id}", token=admin_token
    )
    assert status == 200, listed
    assert_matches_schema("GET", "/deployments", listed)
    assert [item["dependencyBindingReferences"] for item in listed["items"]] == [[recorded]]
