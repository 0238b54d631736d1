"""Access-failure evidence from an agent's reports: shape, scoping, filters and retention."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator.db.edge_models import AccessFailureEvidence
from shared.messages.edge import AccessFailure, AccessFailureReport
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.schema_check import assert_matches_schema
from tests.unit.coordinator.support import assert_error
from tests.unit.coordinator.test_environments_api import create_environment
from tests.unit.coordinator.test_projects_api import create_project, scoped_token
from tests.unit.coordinator.test_thresholds import foreign_resource
from tests.unit.coordinator.test_usage import deployment, resource

PATH = "/resource-access-failures/{requestId}"


def failure(**fields: Any) -> AccessFailure:
    """A plausible 503 'stopped' failure with a fresh request id."""
    values: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "observed_at": datetime.now(UTC),
        "code": "resource_access_resource_stopped",
        "http_status": 503,
        "hostname": "web.production.shop.localhost",
        "path": "/cart?id=1",
        "method": "POST",
        **fields,
    }
    return AccessFailure(**values)


async def lookup(
    coordinator: Coordinator, token: str, request_id: str, query: str = ""
) -> tuple[int, Any, dict[str, str]]:
    return await coordinator.call(
        "GET", f"/resource-access-failures/{request_id}{query}", token=token
    )


async def stored(coordinator: Coordinator, token: str, request_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def present() -> bool:
        status, body, _ = await lookup(coordinator, token, request_id)
        found.update(body if status == 200 else {})
        return status == 200

    await eventually(present, what=f"evidence of {request_id}")
    return found


async def test_reported_failures_are_found_by_request_id_in_the_reference_shape(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "edge-1")
    await agent.connect()
    shop = await create_project(coordinator, admin_token, "shop")
    prod = await create_environment(coordinator, admin_token, shop, "production")
    web = await resource(shop, prod, "web")
    deployed = await deployment(shop, prod, web, agent.server_id, "succeeded")
    _, theirs = await foreign_resource()
    mine = failure(resource_id=web, route_id=f"berth-{web}", cause="berth: the resource is stopped")
    forged = failure(
        resource_id=theirs, code="resource_access_upstream_unavailable", http_status=502
    )
    unrouted = failure(code="resource_access_route_not_found", http_status=404, hostname="x.test")
    await agent.send(AccessFailureReport(id=agent.next_id(), failures=[mine, forged, unrouted]))

    found = await stored(coordinator, admin_token, mine.request_id)
    assert_matches_schema("GET", PATH, found)
    evidence = found["evidence"]
    assert evidence["code"] == "resource_access_resource_stopped"
    assert evidence["affected"] == {
        "url": "http://web.production.shop.localhost/cart?id=1",
        "hostname": "web.production.shop.localhost",
        "path": "/cart",
        "method": "POST",
    }
    assert evidence["route"]["resourceId"] == web
    assert evidence["route"]["deploymentId"] == deployed
    assert evidence["causeCode"] == "resource-stopped"
    assert evidence["correlationId"] == mine.request_id
    assert found["expiresAt"] > found["capturedAt"]

    # An agent cannot attach evidence to another organization's resource: the id is dropped.
    forged_found = await stored(coordinator, admin_token, forged.request_id)
    assert forged_found["evidence"]["route"]["resourceId"] is None
    assert forged_found["evidence"]["route"]["routeId"] is None
    assert (await stored(coordinator, admin_token, unrouted.request_id))["evidence"]["route"][
        "routeSource"
    ] == "none"

    # Filters must all match.
    status, body, _ = await lookup(
        coordinator, admin_token, mine.request_id, "?hostname=other.test"
    )
    assert_error((status, body, _), 404, "not_found")
    status, body, _ = await lookup(
        coordinator, admin_token, mine.request_id, f"?resourceId={web}&path=/cart"
    )
    assert status == 200, body
    assert body["filters"] == {"resourceId": web, "hostname": None, "path": "/cart"}
    # An unknown filter is a 400, a malformed id a 404.
    assert_error(
        await lookup(coordinator, admin_token, mine.request_id, "?x=1"), 400, "invalid_request"
    )
    assert_error(await lookup(coordinator, admin_token, "no{such}id"), 404, "not_found")


async def test_evidence_outside_the_callers_scope_or_past_retention_is_missing(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "edge-1")
    await agent.connect()
    other = await FakeAgent.enroll(coordinator, admin_token, "edge-2")
    shop = await create_project(coordinator, admin_token, "shop")
    prod = await create_environment(coordinator, admin_token, shop, "production")
    web = await resource(shop, prod, "web")
    item = failure(resource_id=web)
    await agent.send(AccessFailureReport(id=agent.next_id(), failures=[item]))
    _ = await stored(coordinator, admin_token, item.request_id)

    # A token limited to another server does not see this server's evidence.
    elsewhere = await scoped_token(
        coordinator, admin_token, ["resources:read"], deploymentTargetIds=[other.server_id]
    )
    assert_error(await lookup(coordinator, elsewhere, item.request_id), 404, "not_found")
    here = await scoped_token(
        coordinator, admin_token, ["resources:read"], deploymentTargetIds=[agent.server_id]
    )
    assert (await lookup(coordinator, here, item.request_id))[0] == 200
    # Without the read permission: 403.
    writer = await scoped_token(coordinator, admin_token, ["deployments:read"])
    assert_error(await lookup(coordinator, writer, item.request_id), 403, "forbidden")

    # Reported twice: the first report stands.
    await agent.send(
        AccessFailureReport(
            id=agent.next_id(), failures=[item.model_copy(update={"hostname": "changed.test"})]
        )
    )
    marker = failure()  # frames are handled in order: once it is stored, so was the repeat
    await agent.send(AccessFailureReport(id=agent.next_id(), failures=[marker]))
    _ = await stored(coordinator, admin_token, marker.request_id)
    # Expired evidence is not served, even before the prune removes it.
    _ = await AccessFailureEvidence.filter(request_id=item.request_id).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert_error(await lookup(coordinator, admin_token, item.request_id), 404, "not_found")
    row = await AccessFailureEvidence.get(request_id=item.request_id)
    assert row.hostname == "web.production.shop.localhost"


async def test_the_newest_failure_is_the_resources_latest_diagnostic(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await FakeAgent.enroll(coordinator, admin_token, "edge-1")
    await agent.connect()
    shop = await create_project(coordinator, admin_token, "shop")
    prod = await create_environment(coordinator, admin_token, shop, "production")
    web = await resource(shop, prod, "web")
    quiet = await resource(shop, prod, "quiet")
    _ = await deployment(shop, prod, web, agent.server_id, "succeeded")
    now = datetime.now(UTC)
    older = failure(resource_id=web, observed_at=now - timedelta(seconds=5))
    await agent.send(AccessFailureReport(id=agent.next_id(), failures=[older]))
    _ = await stored(coordinator, admin_token, older.request_id)
    newer = failure(
        resource_id=web, code="resource_access_upstream_timeout", http_status=504, path="/slow"
    )
    await agent.send(AccessFailureReport(id=agent.next_id(), failures=[newer]))
    evidence = (await stored(coordinator, admin_token, newer.request_id))["evidence"]

    status, shown, _ = await coordinator.call("GET", f"/resources/{web}", token=admin_token)
    assert status == 200, shown
    assert_matches_schema("GET", "/resources/{resourceId}", shown)
    latest = shown["accessSummary"]["latestAccessFailureDiagnostic"]
    assert latest == evidence
    assert latest["requestId"] == newer.request_id
    assert latest["code"] == "resource_access_upstream_timeout"
    assert shown["resource"]["accessSummary"]["latestAccessFailureDiagnostic"] == evidence

    status, listed, _ = await coordinator.call(
        "GET", f"/resources?projectId={shop}", token=admin_token
    )
    assert status == 200, listed
    assert_matches_schema("GET", "/resources", listed)
    by_id = {item["id"]: item["accessSummary"] for item in listed["items"]}
    assert by_id[web]["latestAccessFailureDiagnostic"]["requestId"] == newer.request_id
    assert by_id[quiet]["latestAccessFailureDiagnostic"] is None

    status, health, _ = await coordinator.call("GET", f"/resources/{web}/health", token=admin_token)
    assert status == 200, health
    assert_matches_schema("GET", "/resources/{resourceId}/health", health)
    assert health["publicAccess"]["latestAccessFailure"] == evidence

    # Expired evidence is no diagnostic any more.
    await AccessFailureEvidence.filter(resource_id=web).update(expires_at=now)
    status, shown, _ = await coordinator.call("GET", f"/resources/{web}", token=admin_token)
    assert shown["accessSummary"]["latestAccessFailureDiagnostic"] is None
