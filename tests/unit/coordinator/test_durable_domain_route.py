"""A resource's access summary names its newest bound domain binding as its durable route."""

from typing import Any

from tests.harness import Coordinator
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
