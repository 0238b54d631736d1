"""Domain bindings: validation, scope, redirects, DNS observation and ownership via real dnsmasq."""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from coordinator.db import models
from tests.dns_server import DnsServer
from tests.harness import Coordinator, serving
from tests.unit.coordinator.support import assert_error, audit_events, database_dump
from tests.unit.coordinator.test_environments_api import create_environment
from tests.unit.coordinator.test_projects_api import create_project, scoped_token
from tests.unit.coordinator.test_resources_api import create_resource, workspace

SERVER_ADDRESS = "203.0.113.10"
RECORDS = [
    f"--host-record=app.example.test,{SERVER_ADDRESS}",
    "--host-record=elsewhere.example.test,198.51.100.7",
    "--host-record=v6.example.test,2001:db8::10",
    "--cname=www.example.test,app.example.test",
]
ITEM_KEYS = {
    "id",
    "projectId",
    "environmentId",
    "resourceId",
    "serverId",
    "destinationId",
    "domainName",
    "pathPrefix",
    "proxyKind",
    "tlsMode",
    "redirectTo",
    "redirectStatus",
    "certificatePolicy",
    "status",
    "dnsObservation",
    "verificationAttemptCount",
    "ownership",
    "createdAt",
}


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer(RECORDS)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def coordinator(
    tmp_path: Path, database_url: str, dns_server: DnsServer
) -> AsyncIterator[Coordinator]:
    """A coordinator whose domain checks ask the test's dnsmasq."""
    async with serving(
        tmp_path / "coordinator", database_url, dns_resolver=dns_server.address
    ) as harness:
        yield harness


@pytest.fixture
async def target(coordinator: Coordinator, admin_token: str) -> dict[str, str]:
    """A resource and a server with a known public address."""
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    status, body, _ = await coordinator.call(
        "POST", "/servers", token=admin_token, json={"name": "edge-1", "host": SERVER_ADDRESS}
    )
    assert status == 201, body
    return {
        "projectId": project_id,
        "environmentId": environment_id,
        "resourceId": resource_id,
        "serverId": body["id"],
    }


async def bind(
    coordinator: Coordinator, token: str, target: dict[str, str], domain: str, **extra: Any
) -> str:
    status, body, _ = await coordinator.call(
        "POST", "/domain-bindings", token=token, json={**target, "domainName": domain, **extra}
    )
    assert status == 201, body
    assert body["id"].startswith("dbd_")
    return str(body["id"])


async def show(coordinator: Coordinator, token: str, binding_id: str) -> dict[str, Any]:
    status, body, _ = await coordinator.call("GET", f"/domain-bindings/{binding_id}", token=token)
    assert status == 200, body
    return dict(body)


async def retry(coordinator: Coordinator, token: str, binding_id: str) -> dict[str, Any]:
    status, body, _ = await coordinator.call(
        "POST", f"/domain-bindings/{binding_id}/verification-retries", token=token, json={}
    )
    assert status == 200, body
    assert body["id"] == binding_id
    return dict((await show(coordinator, token, binding_id))["binding"]["dnsObservation"])


async def test_create_normalises_and_shows_the_reference_shape(
    coordinator: Coordinator, admin_token: str, target: dict[str, str]
) -> None:
    binding_id = await bind(coordinator, admin_token, target, "Bücher.Example.TEST")
    body = await show(coordinator, admin_token, binding_id)
    assert set(body) == {
        "binding",
        "routeReadiness",
        "generatedAccessFallback",
        "proxyReadiness",
        "certificates",
        "deleteSafety",
    }
    item = body["binding"]
    assert set(item) == ITEM_KEYS
    assert item["domainName"] == "xn--bcher-kva.example.test"
    assert item["pathPrefix"] == "/"
    assert item["status"] == "pending_verification"
    assert item["tlsMode"] == "auto"
    assert item["dnsObservation"]["status"] == "pending"
    assert item["ownership"]["dnsRecordName"] == "_berth-challenge.xn--bcher-kva.example.test"
    assert body["routeReadiness"]["status"] == "not-ready"
    selected = body["routeReadiness"]["selectedRoute"]
    assert selected["schemaVersion"] == "route-intent-status/v1"
    assert selected["blockingReason"] == "domain_ownership_pending"
    assert body["deleteSafety"]["safeToDelete"] is True
    status, listed, _ = await coordinator.call(
        "GET", f"/domain-bindings?resourceId={target['resourceId']}", token=admin_token
    )
    assert status == 200, listed
    assert [i["id"] for i in listed["items"]] == [binding_id]
    events = await audit_events(coordinator, admin_token)
    assert [e["eventType"] for e in events if e["aggregateId"] == binding_id] == [
        "domain-binding.created"
    ]


@pytest.mark.parametrize(
    "domain",
    [
        "*.example.test",
        "app.example.test.",
        "203.0.113.10",
        "[2001:db8::1]",
        "localhost",
        "a" * 64 + ".example.test",
        ".".join(["a" * 60] * 5),
        "bad_label.example.test",
        "-lead.example.test",
        "app.example.123",
        "",
    ],
)
async def test_invalid_domain_names_are_refused_and_nothing_is_stored(
    coordinator: Coordinator, admin_token: str, target: dict[str, str], domain: str
) -> None:
    before = await database_dump(ignore={"last_used_at"})
    response = await coordinator.call(
        "POST", "/domain-bindings", token=admin_token, json={**target, "domainName": domain}
    )
    _ = assert_error(response, 400, "invalid_request")
    assert await database_dump(ignore={"last_used_at"}) == before


async def test_a_domain_bound_twice_is_a_conflict(
    coordinator: Coordinator, admin_token: str, target: dict[str, str]
) -> None:
    _ = await bind(coordinator, admin_token, target, "app.example.test")
    _ = await bind(coordinator, admin_token, target, "app.example.test", pathPrefix="/api")
    before = await database_dump(ignore={"last_used_at"})
    for domain, extra in (("APP.example.test", {}), ("app.example.test", {"pathPrefix": "/api/"})):
        response = await coordinator.call(
            "POST",
            "/domain-bindings",
            token=admin_token,
            json={**target, "domainName": domain, **extra},
        )
        _ = assert_error(response, 409, "conflict")
    assert await database_dump(ignore={"last_used_at"}) == before


async def test_redirect_loops_are_refused(
    coordinator: Coordinator, admin_token: str, target: dict[str, str]
) -> None:
    apex = await bind(coordinator, admin_token, target, "app.example.test")
    www = await bind(
        coordinator,
        admin_token,
        target,
        "www.example.test",
        redirectTo="app.example.test",
        redirectStatus=308,
    )
    before = await database_dump(ignore={"last_used_at"})
    response = await coordinator.call(
        "POST",
        f"/domain-bindings/{apex}/route",
        token=admin_token,
        json={"redirectTo": "www.example.test", "redirectStatus": 301},
    )
    _ = assert_error(response, 400, "invalid_request")
    response = await coordinator.call(
        "POST",
        f"/domain-bindings/{apex}/route",
        token=admin_token,
        json={"redirectTo": "app.example.test"},
    )
    _ = assert_error(response, 400, "invalid_request")
    response = await coordinator.call(
        "POST",
        f"/domain-bindings/{apex}/route",
        token=admin_token,
        json={"redirectTo": "nowhere.example.test"},
    )
    _ = assert_error(response, 404, "not_found")
    response = await coordinator.call(
        "POST",
        f"/domain-bindings/{apex}/route",
        token=admin_token,
        json={"redirectTo": "www.example.test", "redirectStatus": 303},
    )
    _ = assert_error(response, 400, "invalid_request")
    assert await database_dump(ignore={"last_used_at"}) == before
    shown = await show(coordinator, admin_token, www)
    assert shown["binding"]["redirectStatus"] == 308
    assert shown["routeReadiness"]["routeBehavior"] == "redirect"
    # the apex is a redirect target: deleting it is blocked until www changes
    check = await show(coordinator, admin_token, apex)
    assert check["deleteSafety"]["safeToDelete"] is False
    assert check["deleteSafety"]["blockers"][0]["relatedEntityId"] == www
    response = await coordinator.call(
        "DELETE",
        f"/domain-bindings/{apex}",
        token=admin_token,
        json={"confirmation": {"domainBindingId": apex}},
    )
    _ = assert_error(response, 409, "conflict")


async def test_delete_needs_the_confirmation(
    coordinator: Coordinator, admin_token: str, target: dict[str, str]
) -> None:
    binding_id = await bind(coordinator, admin_token, target, "app.example.test")
    response = await coordinator.call(
        "DELETE",
        f"/domain-bindings/{binding_id}",
        token=admin_token,
        json={"confirmation": {"domainBindingId": "dbd_other"}},
    )
    _ = assert_error(response, 400, "invalid_request")
    status, body, _ = await coordinator.call(
        "GET", f"/domain-bindings/{binding_id}/delete-check", token=admin_token
    )
    assert (status, body["safeToDelete"]) == (200, True), body
    status, body, _ = await coordinator.call(
        "DELETE",
        f"/domain-bindings/{binding_id}",
        token=admin_token,
        json={"confirmation": {"domainBindingId": binding_id}},
    )
    assert (status, body) == (200, {"id": binding_id})
    response = await coordinator.call("GET", f"/domain-bindings/{binding_id}", token=admin_token)
    _ = assert_error(response, 404, "not_found")
    events = await audit_events(coordinator, admin_token)
    assert "domain-binding.deleted" in [e["eventType"] for e in events]


async def test_unknown_and_other_scope_resources_are_404(
    coordinator: Coordinator, admin_token: str, target: dict[str, str]
) -> None:
    other_project = await create_project(coordinator, admin_token, "Other")
    other_env = await create_environment(coordinator, admin_token, other_project)
    other_resource = await create_resource(coordinator, admin_token, other_project, other_env)
    other_binding = await bind(
        coordinator,
        admin_token,
        {"projectId": other_project, "environmentId": other_env, "resourceId": other_resource},
        "elsewhere.example.test",
    )
    token = await scoped_token(
        coordinator,
        admin_token,
        ["domain-bindings:read", "domain-bindings:write"],
        projectIds=[target["projectId"]],
    )
    before = await database_dump(ignore={"last_used_at"})
    response = await coordinator.call(
        "POST",
        "/domain-bindings",
        token=token,
        json={
            "projectId": other_project,
            "environmentId": other_env,
            "resourceId": other_resource,
            "domainName": "new.example.test",
        },
    )
    _ = assert_error(response, 404, "not_found")
    response = await coordinator.call(
        "POST",
        "/domain-bindings",
        token=token,
        json={**target, "resourceId": "res_missing", "domainName": "new.example.test"},
    )
    _ = assert_error(response, 404, "not_found")
    for method, path, body in (
        ("GET", f"/domain-bindings/{other_binding}", None),
        ("GET", f"/domain-bindings/{other_binding}/delete-check", None),
        ("POST", f"/domain-bindings/{other_binding}/verification-retries", {}),
        ("POST", f"/domain-bindings/{other_binding}/route", {}),
        ("POST", f"/domain-bindings/{other_binding}/ownership-confirmations", {}),
        (
            "DELETE",
            f"/domain-bindings/{other_binding}",
            {"confirmation": {"domainBindingId": other_binding}},
        ),
    ):
        response = await coordinator.call(method, path, token=token, json=body)
        _ = assert_error(response, 404, "not_found")
    status, listed, _ = await coordinator.call("GET", "/domain-bindings", token=token)
    assert (status, listed["items"]) == (200, [])
    assert await database_dump(ignore={"last_used_at"}) == before


async def test_dns_observation_against_a_real_resolver(
    coordinator: Coordinator, admin_token: str, target: dict[str, str], dns_server: DnsServer
) -> None:
    matched = await bind(coordinator, admin_token, target, "app.example.test")
    observation = await retry(coordinator, admin_token, matched)
    assert observation["status"] == "matched", observation
    assert observation["expectedTargets"] == [SERVER_ADDRESS]
    assert observation["observedTargets"] == [SERVER_ADDRESS]
    cname = await bind(coordinator, admin_token, target, "www.example.test")
    observation = await retry(coordinator, admin_token, cname)
    assert observation["status"] == "matched", observation
    assert "CNAME app.example.test" in observation["observedTargets"]
    elsewhere = await bind(coordinator, admin_token, target, "elsewhere.example.test")
    observation = await retry(coordinator, admin_token, elsewhere)
    assert observation["status"] == "mismatched", observation
    assert observation["observedTargets"] == ["198.51.100.7"]
    assert observation["reasonCode"] == "dns_points_elsewhere"
    v6 = await bind(coordinator, admin_token, target, "v6.example.test")
    observation = await retry(coordinator, admin_token, v6)
    assert (observation["status"], observation["observedTargets"]) == (
        "mismatched",
        ["2001:db8::10"],
    )
    missing = await bind(coordinator, admin_token, target, "missing.example.test")
    observation = await retry(coordinator, admin_token, missing)
    assert (observation["status"], observation["reasonCode"]) == (
        "not-found",
        "dns_record_missing",
    )
    assert (await show(coordinator, admin_token, missing))["binding"][
        "verificationAttemptCount"
    ] == 1
    unknown_target = await bind(
        coordinator,
        admin_token,
        {k: v for k, v in target.items() if k != "serverId"},
        "app.example.test",
        pathPrefix="/api",
    )
    observation = await retry(coordinator, admin_token, unknown_target)
    assert (observation["status"], observation["reasonCode"]) == (
        "target-unknown",
        "server_public_address_unknown",
    )
    dns_server.stop()  # nothing answers on the resolver's port any more
    observation = await retry(coordinator, admin_token, matched)
    assert observation["status"] == "lookup-failed", observation


async def test_ownership_by_dns_txt_token(
    coordinator: Coordinator, admin_token: str, target: dict[str, str], dns_server: DnsServer
) -> None:
    binding_id = await bind(coordinator, admin_token, target, "app.example.test")
    token = (await show(coordinator, admin_token, binding_id))["binding"]["ownership"]["token"]
    before = await database_dump(ignore={"last_used_at"})
    response = await coordinator.call(
        "POST",
        f"/domain-bindings/{binding_id}/ownership-confirmations",
        token=admin_token,
        json={},
    )
    error = assert_error(response, 409, "conflict")
    assert error["details"]["recordName"] == "_berth-challenge.app.example.test"
    assert await database_dump(ignore={"last_used_at"}) == before
    dns_server.start([f"--txt-record=_berth-challenge.app.example.test,{token}"])
    status, body, _ = await coordinator.call(
        "POST",
        f"/domain-bindings/{binding_id}/ownership-confirmations",
        token=admin_token,
        json={"method": "dns-txt"},
    )
    assert status == 200, body
    assert body["verificationAttemptId"].startswith("dva_")
    _ = await retry(coordinator, admin_token, binding_id)
    shown = await show(coordinator, admin_token, binding_id)
    assert shown["binding"]["status"] == "bound"
    assert shown["routeReadiness"]["status"] == "ready", shown["routeReadiness"]
    events = await audit_events(coordinator, admin_token)
    assert "domain-binding.ownership-confirmed" in [e["eventType"] for e in events]


async def test_manual_override_needs_its_permission_and_a_reason(
    coordinator: Coordinator, admin_token: str, target: dict[str, str]
) -> None:
    binding_id = await bind(coordinator, admin_token, target, "app.example.test")
    writer = await scoped_token(
        coordinator, admin_token, ["domain-bindings:read", "domain-bindings:write"]
    )
    path = f"/domain-bindings/{binding_id}/ownership-confirmations"
    response = await coordinator.call(
        "POST", path, token=writer, json={"method": "manual", "reason": "checked by phone"}
    )
    _ = assert_error(response, 403, "forbidden")
    response = await coordinator.call("POST", path, token=admin_token, json={"method": "manual"})
    _ = assert_error(response, 400, "invalid_request")
    status, body, _ = await coordinator.call(
        "POST", path, token=admin_token, json={"method": "manual", "reason": "checked by phone"}
    )
    assert status == 200, body
    assert (await show(coordinator, admin_token, binding_id))["binding"]["status"] == "bound"
    events = [
        e
        for e in await audit_events(coordinator, admin_token)
        if e["eventType"] == "domain-binding.ownership-confirmed"
    ]
    assert events[-1]["payload"]["reason"] == "checked by phone"
    assert events[-1]["payload"]["method"] == "manual"


async def test_http_token_is_recorded_and_stays_pending(
    coordinator: Coordinator, admin_token: str, target: dict[str, str]
) -> None:
    binding_id = await bind(coordinator, admin_token, target, "app.example.test")
    status, body, _ = await coordinator.call(
        "POST",
        f"/domain-bindings/{binding_id}/ownership-confirmations",
        token=admin_token,
        json={"method": "http-token"},
    )
    assert status == 200, body
    item = (await show(coordinator, admin_token, binding_id))["binding"]
    assert item["status"] == "pending_verification"
    assert item["ownership"]["method"] == "http-token"
    assert (
        item["ownership"]["httpPath"] == "/.well-known/berth-domain/" + item["ownership"]["token"]
    )


async def test_scoped_tokens_read_the_audit_events_of_their_bindings_only(
    coordinator: Coordinator, admin_token: str, target: dict[str, str]
) -> None:
    mine = await bind(coordinator, admin_token, target, "app.example.test")
    other_project = await create_project(coordinator, admin_token, "Other")
    other_env = await create_environment(coordinator, admin_token, other_project)
    other_resource = await create_resource(coordinator, admin_token, other_project, other_env)
    theirs = await bind(
        coordinator,
        admin_token,
        {"projectId": other_project, "environmentId": other_env, "resourceId": other_resource},
        "elsewhere.example.test",
    )
    for binding_id in (mine, theirs):
        _ = await retry(coordinator, admin_token, binding_id)
    token = await scoped_token(
        coordinator, admin_token, ["audit-events:read"], projectIds=[target["projectId"]]
    )
    seen = [
        (e["aggregateId"], e["eventType"])
        for e in await audit_events(coordinator, token)
        if e["aggregateType"] == "domain-binding"
    ]
    assert seen == [
        (mine, "domain-binding.created"),
        (mine, "domain-binding.verification-retried"),
    ]


async def test_a_dead_resolver_makes_the_dns_ownership_check_retriable(
    coordinator: Coordinator, admin_token: str, target: dict[str, str], dns_server: DnsServer
) -> None:
    binding_id = await bind(coordinator, admin_token, target, "app.example.test")
    dns_server.stop()
    before = await database_dump(ignore={"last_used_at"})
    response = await coordinator.call(
        "POST",
        f"/domain-bindings/{binding_id}/ownership-confirmations",
        token=admin_token,
        json={},
    )
    error = assert_error(response, 503, "unavailable")
    assert error["retriable"] is True
    assert await database_dump(ignore={"last_used_at"}) == before


async def test_another_organization_cannot_bind_a_path_under_a_bound_host(
    coordinator: Coordinator, admin_token: str, target: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    org = await models.Organization.create(id="org_other", name="O", slug="o", created_at=now)
    project = await models.Project.create(
        id="prj_other", organization=org, name="o", slug="o", created_at=now
    )
    environment = await models.Environment.create(
        id="env_other", project=project, name="production", created_at=now
    )
    resource = await models.Resource.create(
        id="res_other",
        project=project,
        environment=environment,
        name="o",
        slug="o",
        created_at=now,
    )
    _ = await models.DomainBinding.create(
        id="dbd_other",
        organization=org,
        project_id=project.id,
        environment_id=environment.id,
        resource=resource,
        domain_name="app.example.test",
        ownership_token="t",
        created_at=now,
    )
    before = await database_dump(ignore={"last_used_at"})
    response = await coordinator.call(
        "POST",
        "/domain-bindings",
        token=admin_token,
        json={**target, "domainName": "app.example.test", "pathPrefix": "/admin"},
    )
    error = assert_error(response, 409, "conflict")
    assert "dbd_other" not in str(error)
    assert await database_dump(ignore={"last_used_at"}) == before
    status, listed, _ = await coordinator.call("GET", "/domain-bindings", token=admin_token)
    assert (status, listed["items"]) == (200, [])


async def test_a_loop_through_bindings_outside_the_callers_scope_is_found(
    coordinator: Coordinator, admin_token: str, target: dict[str, str]
) -> None:
    apex = await bind(coordinator, admin_token, target, "app.example.test")
    www = await bind(coordinator, admin_token, target, "www.example.test")
    other_project = await create_project(coordinator, admin_token, "Other")
    other_env = await create_environment(coordinator, admin_token, other_project)
    other_resource = await create_resource(coordinator, admin_token, other_project, other_env)
    _ = await bind(
        coordinator,
        admin_token,
        {"projectId": other_project, "environmentId": other_env, "resourceId": other_resource},
        "elsewhere.example.test",
        redirectTo="app.example.test",
    )
    status, body, _ = await coordinator.call(
        "POST",
        f"/domain-bindings/{www}/route",
        token=admin_token,
        json={"redirectTo": "elsewhere.example.test"},
    )
    assert status == 200, body
    token = await scoped_token(
        coordinator,
        admin_token,
        ["domain-bindings:read", "domain-bindings:write"],
        projectIds=[target["projectId"]],
    )
    before = await database_dump(ignore={"last_used_at"})
    # app -> www -> elsewhere (out of the token's scope) -> app
    response = await coordinator.call(
        "POST",
        f"/domain-bindings/{apex}/route",
        token=token,
        json={"redirectTo": "www.example.test"},
    )
    _ = assert_error(response, 400, "invalid_request")
    assert await database_dump(ignore={"last_used_at"}) == before
