"""A resource's access summary names its newest bound domain binding as its durable route."""

from typing import Any

from shared.messages import DeployPlan
from tests.harness import Coordinator
from tests.unit.coordinator.schema_check import assert_matches_schema
from tests.unit.coordinator.test_deployment_engine import (
    accept,
    create_deployment,
    make_world,
    wait_status,
)
from tests.unit.coordinator.test_resources_api import create_resource, workspace


async def _binding(
    coordinator: Coordinator, token: str, target: dict[str, str], **body: Any
) -> str:
    status, answer, _ = await coordinator.call(
        "POST", "/domain-bindings", token=token, json={**target, **body}
    )
    assert status == 201, answer
    return str(answer["id"])


async def _confirm(coordinator: Coordinator, token: str, binding_id: str) -> None:
    status, answer, _ = await coordinator.call(
        "POST",
        f"/domain-bindings/{binding_id}/ownership-confirmations",
        token=token,
        json={"method": "manual", "reason": "checked by phone"},
    )
    assert status == 200, answer


async def _summaries(
    coordinator: Coordinator, token: str, resource_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(show's, the list item's) access summary."""
    status, shown, _ = await coordinator.call("GET", f"/resources/{resource_id}", token=token)
    assert status == 200, shown
    assert shown["resource"]["accessSummary"] == shown["accessSummary"]
    status, listed, _ = await coordinator.call("GET", "/resources", token=token)
    assert status == 200, listed
    [item] = [i for i in listed["items"] if i["id"] == resource_id]
    return shown["accessSummary"], item["accessSummary"]


async def test_the_newest_bound_binding_is_the_durable_domain_route(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    other_id = await create_resource(
        coordinator, admin_token, project_id, environment_id, name="api"
    )
    target = {"projectId": project_id, "environmentId": environment_id}
    mine = {**target, "resourceId": resource_id}
    status, shown, _ = await coordinator.call("GET", f"/resources/{resource_id}", token=admin_token)
    assert status == 200, shown
    port = shown["networkProfile"]["internalPort"]

    plain = await _binding(
        coordinator, admin_token, mine, domainName="plain.example.test", tlsMode="disabled"
    )
    secure = await _binding(
        coordinator, admin_token, mine, domainName="shop.example.test", pathPrefix="/store"
    )
    elsewhere = await _binding(
        coordinator, admin_token, {**target, "resourceId": other_id}, domainName="api.example.test"
    )
    # Pending bindings route nothing yet.
    for summary in await _summaries(coordinator, admin_token, resource_id):
        assert summary["latestDurableDomainRoute"] is None

    await _confirm(coordinator, admin_token, plain)
    await _confirm(coordinator, admin_token, elsewhere)  # another resource's: not this one's
    for summary in await _summaries(coordinator, admin_token, resource_id):
        route = summary["latestDurableDomainRoute"]
        assert {k: route[k] for k in ("url", "hostname", "scheme", "pathPrefix", "targetPort")} == {
            "url": "http://plain.example.test",
            "hostname": "plain.example.test",
            "scheme": "http",
            "pathPrefix": "/",
            "targetPort": port,
        }
        assert (route["providerKey"], route["deploymentId"]) == ("caddy", None)

    await _confirm(coordinator, admin_token, secure)
    for summary in await _summaries(coordinator, admin_token, resource_id):
        route = summary["latestDurableDomainRoute"]
        assert (route["url"], route["scheme"], route["pathPrefix"]) == (
            "https://shop.example.test/store",
            "https",
            "/store",
        )


async def test_the_route_the_edge_reported_serving_is_the_server_applied_route(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    mine = {
        "projectId": world.project_id,
        "environmentId": world.environment_id,
        "resourceId": world.resource_id,
    }
    binding = await _binding(
        coordinator, admin_token, mine, domainName="shop.example.test", tlsMode="disabled"
    )
    await _confirm(coordinator, admin_token, binding)

    async def observation() -> Any:
        status, shown, _ = await coordinator.call(
            "GET", f"/domain-bindings/{binding}", token=admin_token
        )
        assert status == 200, shown
        assert_matches_schema("GET", "/domain-bindings/{domainBindingId}", shown)
        return shown["routeReadiness"]["selectedRoute"]["latestObservation"]

    for summary in await _summaries(coordinator, admin_token, world.resource_id):
        assert summary["latestDurableDomainRoute"]["hostname"] == "shop.example.test"
        assert summary["latestServerAppliedDomainRoute"] is None
    assert await observation() is None

    await world.agent.connect()
    # A deployment whose agent reports no domain route served: still nothing applied.
    first = await create_deployment(coordinator, admin_token, world)
    plan = await world.agent.expect(DeployPlan)
    await accept(world, plan)
    _ = await world.agent.result(first, "succeeded", routedDomains=[])
    await wait_status(coordinator, admin_token, first, "succeeded")
    for summary in await _summaries(coordinator, admin_token, world.resource_id):
        assert summary["latestServerAppliedDomainRoute"] is None
    assert await observation() is None

    second = await create_deployment(coordinator, admin_token, world)
    plan = await world.agent.expect(DeployPlan)
    assert plan.route is not None
    assert [route.id for route in plan.route.domains] == [binding]
    await accept(world, plan)
    _ = await world.agent.result(second, "succeeded", routedDomains=[binding])
    await wait_status(coordinator, admin_token, second, "succeeded")
    status, shown, _ = await coordinator.call("GET", f"/deployments/{second}", token=admin_token)
    assert status == 200, shown
    finished = shown["deployment"]["finishedAt"]
    for summary in await _summaries(coordinator, admin_token, world.resource_id):
        applied = summary["latestServerAppliedDomainRoute"]
        assert applied == {
            **summary["latestDurableDomainRoute"],
            "deploymentId": second,
            "deploymentStatus": "succeeded",
            "updatedAt": finished,
        }
    assert await observation() == {
        "source": "resource-access-summary",
        "observedAt": finished,
        "requestId": None,
        "deploymentId": second,
    }
