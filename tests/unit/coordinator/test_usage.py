"""``GET /runtime-usage/inspect`` from stored sample rows: grouping, freshness, 404/400s."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator.db import models
from coordinator.db.monitoring_models import RuntimeSample
from coordinator.ids import new_id
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator
from tests.unit.coordinator.schema_check import assert_matches_schema
from tests.unit.coordinator.support import assert_error
from tests.unit.coordinator.test_environments_api import create_environment
from tests.unit.coordinator.test_projects_api import create_project, scoped_token
from tests.unit.coordinator.test_thresholds import container, foreign_resource, sample, send_samples

_numbers = itertools.count(1)
GIB = 1024**3


async def store_sample(
    server_id: str,
    containers: list[dict[str, Any]],
    *,
    age_seconds: float = 1.0,
    interval: float = 10.0,
    busy: float = 25.0,
) -> RuntimeSample:
    """Insert one sample row as ingest stores it (camelCase JSON, trusted attribution unless a
    container sets its own ``attributionTrusted``)."""
    number = next(_numbers)
    observed = datetime.now(UTC) - timedelta(seconds=age_seconds)
    return await RuntimeSample.create(
        sample_id=f"usage-sample-{number:06d}",
        server_id=server_id,
        sequence=number,
        observed_at=observed,
        received_at=observed,
        interval_seconds=interval,
        totals={
            "cpu": {
                "logicalCores": 4,
                "loadAverage1M": 1.5,
                "loadAverage5M": 1.0,
                "loadAverage15M": 0.5,
                "busyPercent": busy,
                "containerCpuPercent": sum(c["cpuPercent"] for c in containers),
            },
            "memory": {
                "totalBytes": 8 * GIB,
                "usedBytes": 2 * GIB,
                "availableBytes": 6 * GIB,
                "containerUsedBytes": sum(c["memoryBytes"] for c in containers),
            },
            "disk": None,
            "inode": None,
            "docker": None,
            "network": None,
        },
        mounts=[],
        containers=[{"attributionTrusted": True, **c} for c in containers],
        warnings=[],
    )


def box(
    project: str | None,
    environment: str | None,
    resource: str | None,
    deployment: str | None,
    cpu: float,
    memory: int,
) -> dict[str, Any]:
    """A stored container row."""
    return {
        "containerId": f"ctr{next(_numbers):09d}",
        "name": f"box-{resource}",
        "projectId": project,
        "environmentId": environment,
        "resourceId": resource,
        "deploymentId": deployment,
        "cpuPercent": cpu,
        "memoryBytes": memory,
        "writableBytes": 1000,
        "rxBytes": 10,
        "txBytes": 20,
    }


async def resource(project_id: str, environment_id: str, name: str) -> str:
    """A resource row (written directly, as other API tests do)."""
    row = await models.Resource.create(
        id=new_id("res"),
        project_id=project_id,
        environment_id=environment_id,
        name=name,
        slug=name,
        created_at=datetime.now(UTC),
    )
    return row.id


async def deployment(
    project_id: str, environment_id: str, resource_id: str, server_id: str, status: str
) -> str:
    """A deployment row on ``server_id`` (how usage finds the servers of a project)."""
    organization = await models.Organization.first()
    assert organization is not None
    row = await models.Deployment.create(
        id=new_id("dep"),
        organization_id=organization.id,
        project_id=project_id,
        environment_id=environment_id,
        resource_id=resource_id,
        server_id=server_id,
        status=status,
        created_at=datetime.now(UTC),
        finished_at=datetime.now(UTC) if status == "succeeded" else None,
    )
    return row.id


async def usage(coordinator: Coordinator, token: str, query: str) -> dict[str, Any]:
    """``GET /runtime-usage/inspect?query``, expected to succeed."""
    status, body, _ = await coordinator.call("GET", f"/runtime-usage/inspect?{query}", token=token)
    assert status == 200, body
    assert_matches_schema("GET", "/runtime-usage/inspect", body)
    return dict(body)


async def test_usage_groups_containers_by_scope(coordinator: Coordinator, admin_token: str) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "web-1")
    await agent.connect()
    other = await FakeAgent.enroll(coordinator, admin_token, "web-2")  # never connects
    shop = await create_project(coordinator, admin_token, "shop")
    prod = await create_environment(coordinator, admin_token, shop, "production")
    stage = await create_environment(coordinator, admin_token, shop, "staging")
    web = await resource(shop, prod, "web")
    api = await resource(shop, stage, "api")
    old = await deployment(shop, prod, web, agent.server_id, "succeeded")
    new = await deployment(shop, prod, web, agent.server_id, "succeeded")
    api_dep = await deployment(shop, stage, api, other.server_id, "succeeded")
    _ = await store_sample(agent.server_id, [box(shop, prod, web, old, 5, 100)], age_seconds=60)
    _ = await store_sample(
        agent.server_id,
        [
            box(shop, prod, web, new, 30, 1000),
            box(shop, prod, web, old, 10, 500),
            box(None, None, None, None, 50, 7000),
        ],
    )

    server = await usage(coordinator, admin_token, f"scopeKind=server&serverId={agent.server_id}")
    assert server["schemaVersion"] == "runtime-usage.inspect/v1"
    assert server["scope"] == {"kind": "server", "serverId": agent.server_id}
    assert server["freshness"] == "live"
    assert server["partial"] is False
    assert server["sourceErrors"] == []
    assert server["totals"]["cpu"]["busyPercent"] == 25.0
    assert server["totals"]["cpu"]["loadAverage1m"] == 1.5
    assert server["totals"]["memory"]["containerUsedBytes"] == 8500
    assert server["totals"]["containers"]["count"] == 3
    [by_project] = server["byProject"]
    assert by_project["scope"] == {"kind": "project", "projectId": shop}
    assert by_project["name"] == "shop"
    assert by_project["totals"]["cpu"]["containerCpuPercent"] == 40
    assert by_project["totals"]["memory"]["containerUsedBytes"] == 1500
    assert by_project["artifactCount"] == 2
    [by_resource] = server["byResource"]
    assert by_resource["name"] == "web"
    assert by_resource["currentDeploymentId"] == new  # the newest deployment id
    assert by_resource["currentRuntimeId"] == server["artifacts"][0]["runtimeId"]
    assert {g["scope"]["deploymentId"] for g in server["byDeployment"]} == {old, new}
    assert len(server["artifacts"]) == 3
    unlabelled = [a for a in server["artifacts"] if a["ownership"] == "unattributed"]
    assert len(unlabelled) == 1
    assert unlabelled[0]["evidence"] == []
    labelled = server["artifacts"][0]
    assert labelled["kind"] == "active-runtime"
    assert {e["key"] for e in labelled["evidence"]} == {
        "berth.project-id",
        "berth.environment-id",
        "berth.resource-id",
        "berth.deployment-id",
    }

    # Nested scope, same answer. A project spans both servers: the second has no sample.
    nested = await usage(
        coordinator, admin_token, f"scope.kind=server&scope.serverId={agent.server_id}"
    )
    assert nested["totals"] == server["totals"]
    project = await usage(coordinator, admin_token, f"scopeKind=project&projectId={shop}")
    assert project["totals"]["cpu"]["containerCpuPercent"] == 40
    assert project["partial"] is True
    codes = {(e["code"], e["serverId"]) for e in project["sourceErrors"]}
    assert codes == {("agent-offline", other.server_id), ("no-samples", other.server_id)}
    assert [g["name"] for g in project["byEnvironment"]] == ["production"]

    # The staging environment only runs on the silent server: nothing measured.
    staging = await usage(coordinator, admin_token, f"environmentId={stage}")
    assert staging["freshness"] == "unavailable"
    assert staging["totals"]["cpu"]["containerCpuPercent"] == 0
    assert staging["byResource"] == []
    dep = await usage(coordinator, admin_token, f"scopeKind=deployment&deploymentId={old}")
    assert dep["totals"]["memory"]["containerUsedBytes"] == 500
    assert api_dep
    await agent.close()


async def test_stale_and_offline_are_partial(coordinator: Coordinator, admin_token: str) -> None:
    server = await coordinator.add_server(admin_token, "db-1")
    _ = await store_sample(server["id"], [], age_seconds=600, interval=10)
    answer = await usage(coordinator, admin_token, f"serverId={server['id']}")
    assert answer["freshness"] == "stale"
    assert answer["partial"] is True
    assert [e["code"] for e in answer["sourceErrors"]] == ["agent-offline"]
    assert answer["sourceErrors"][0]["source"] == "runtime-target"
    assert answer["sourceErrors"][0]["retriable"] is True
    assert answer["totals"]["memory"]["totalBytes"] == 8 * GIB


async def test_an_agents_first_sample_is_live_until_the_next_is_due(
    coordinator: Coordinator, admin_token: str
) -> None:
    # The first sample spans the agent's one-second priming read; the next follows one default
    # 15 s interval later, so 13 s after it the figures are current, not "stale".
    server = await coordinator.add_server(admin_token, "db-1")
    _ = await store_sample(server["id"], [], age_seconds=13, interval=1.0)
    answer = await usage(coordinator, admin_token, f"serverId={server['id']}")
    assert answer["freshness"] == "live"
    query = f"scope.kind=server&scope.serverId={server['id']}"
    status, listed, _ = await coordinator.call(
        "GET", f"/runtime-monitoring/samples?{query}", token=admin_token
    )
    assert status == 200, listed
    assert listed["freshness"] == "live"


async def test_bad_and_unknown_scopes(coordinator: Coordinator, admin_token: str) -> None:
    server = await coordinator.add_server(admin_token, "db-1")
    for query in (
        "",
        "scopeKind=server",
        "scopeKind=planet&serverId=x",
        f"serverId={server['id']}&projectId=prj_x",
        f"scopeKind=project&serverId={server['id']}",
        f"serverId={server['id']}&scope.kind=project&scope.projectId=prj_x",
        f"serverId={server['id']}&mode=history",
        f"serverId={server['id']}&bogus=1",
    ):
        assert_error(
            await coordinator.call("GET", f"/runtime-usage/inspect?{query}", token=admin_token),
            400,
            "invalid_request",
        )
    for query in (
        "serverId=srv_missing",
        "projectId=prj_missing",
        "environmentId=env_missing",
        "resourceId=res_missing",
        "deploymentId=dep_missing",
    ):
        assert_error(
            await coordinator.call("GET", f"/runtime-usage/inspect?{query}", token=admin_token),
            404,
            "not_found",
        )
    # A token limited to another server sees this one as missing; no permission is 403.
    other = await coordinator.add_server(admin_token, "db-2")
    limited = await scoped_token(
        coordinator, admin_token, ["runtime-monitoring:read"], deploymentTargetIds=[other["id"]]
    )
    assert_error(
        await coordinator.call(
            "GET", f"/runtime-usage/inspect?serverId={server['id']}", token=limited
        ),
        404,
        "not_found",
    )
    unprivileged = await scoped_token(coordinator, admin_token, ["servers:read"])
    assert_error(
        await coordinator.call(
            "GET", f"/runtime-usage/inspect?serverId={server['id']}", token=unprivileged
        ),
        403,
        "forbidden",
    )


async def test_untrusted_containers_count_only_for_their_server(
    coordinator: Coordinator, admin_token: str
) -> None:
    """Rows whose containers ingest did not trust (or that carry no verdict) never place them
    in a project, environment, resource or deployment; the server still counts them."""
    server = await coordinator.add_server(admin_token, "web-1")
    shop = await create_project(coordinator, admin_token, "shop")
    prod = await create_environment(coordinator, admin_token, shop, "production")
    web = await resource(shop, prod, "web")
    dep = await deployment(shop, prod, web, server["id"], "succeeded")
    unverified = box(shop, prod, web, dep, 70, 7000)
    unverified["attributionTrusted"] = False
    no_verdict = box(shop, prod, web, dep, 80, 8000)
    no_verdict["attributionTrusted"] = None
    _ = await store_sample(
        server["id"], [box(shop, prod, web, dep, 10, 1000), unverified, no_verdict]
    )

    by_server = await usage(coordinator, admin_token, f"serverId={server['id']}")
    assert by_server["totals"]["containers"]["count"] == 3
    assert by_server["totals"]["memory"]["containerUsedBytes"] == 16000  # host figure
    [by_resource] = by_server["byResource"]
    assert by_resource["totals"]["cpu"]["containerCpuPercent"] == 10
    assert by_resource["artifactCount"] == 1
    artifacts = {a["cpuPercent"]: a for a in by_server["artifacts"]}
    assert artifacts[10]["ownership"] == "attributed"
    for cpu in (70, 80):
        artifact = artifacts[cpu]
        assert artifact["ownership"] == "unattributed"
        assert artifact["evidence"] == []
        assert artifact["resourceId"] is None
        assert [w["code"] for w in artifact["warnings"]] == ["attribution-unverified"]
        assert "berth.resource-id" in artifact["warnings"][0]["message"]
    assert [w["code"] for w in by_server["warnings"]] == ["attribution-unverified"]
    assert "2 container(s)" in by_server["warnings"][0]["message"]

    for query in (f"projectId={shop}", f"environmentId={prod}", f"resourceId={web}"):
        scoped = await usage(coordinator, admin_token, query)
        assert scoped["totals"]["cpu"]["containerCpuPercent"] == 10, query
        assert scoped["totals"]["containers"]["count"] == 1, query
        assert [a["cpuPercent"] for a in scoped["artifacts"]] == [10], query
    scoped = await usage(coordinator, admin_token, f"deploymentId={dep}")
    assert scoped["totals"]["memory"]["containerUsedBytes"] == 1000


async def test_ingested_labels_of_another_tenant_are_not_attributed(
    coordinator: Coordinator, admin_token: str
) -> None:
    """End to end: an agent reports a container under another organization's resource and one
    under its own resource with a wrong project; ingest stores them untrusted and usage keeps
    them out of the resource's figures."""
    agent = await FakeAgent.enroll(coordinator, admin_token, "web-1")
    await agent.connect()
    shop = await create_project(coordinator, admin_token, "shop")
    prod = await create_environment(coordinator, admin_token, shop, "production")
    web = await resource(shop, prod, "web")
    _ = await deployment(shop, prod, web, agent.server_id, "succeeded")
    their_project, their_resource = await foreign_resource()
    await send_samples(
        agent,
        sample(
            containers=[
                container(web, 15),
                container(web, 40, projectId=their_project),
                container(their_resource, 45),
            ]
        ),
    )
    own = await usage(coordinator, admin_token, f"resourceId={web}")
    assert own["totals"]["cpu"]["containerCpuPercent"] == 15
    assert own["totals"]["containers"]["count"] == 1
    by_server = await usage(coordinator, admin_token, f"serverId={agent.server_id}")
    assert by_server["totals"]["containers"]["count"] == 3
    assert [g["scope"]["resourceId"] for g in by_server["byResource"]] == [web]
    assert sorted(a["ownership"] for a in by_server["artifacts"]) == [
        "attributed",
        "unattributed",
        "unattributed",
    ]
    assert their_resource not in str(by_server["byResource"] + by_server["byProject"])
    await agent.close()
