"""Certificate routes against a real coordinator and database: scope, permissions, bad input
(nothing stored), audit, and the commands' refusals when no agent can act."""

from typing import Any

import pytest

from tests.harness import Coordinator
from tests.tls_material import issue_for
from tests.unit.coordinator.support import assert_error, audit_events, database_dump
from tests.unit.coordinator.test_projects_api import create_project, scoped_token
from tests.unit.coordinator.test_resources_api import create_resource, workspace

DOMAIN = "shop.example.test"


@pytest.fixture
async def binding(coordinator: Coordinator, admin_token: str) -> dict[str, Any]:
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    status, server, _ = await coordinator.call(
        "POST", "/servers", token=admin_token, json={"name": "edge-1", "host": "203.0.113.10"}
    )
    assert status == 201, server
    status, body, _ = await coordinator.call(
        "POST",
        "/domain-bindings",
        token=admin_token,
        json={
            "projectId": project_id,
            "environmentId": environment_id,
            "resourceId": resource_id,
            "serverId": server["id"],
            "domainName": DOMAIN,
        },
    )
    assert status == 201, body
    return {"id": body["id"], "projectId": project_id}


async def _import(coordinator: Coordinator, token: str, binding_id: str) -> Any:
    issued = issue_for([DOMAIN])
    return await coordinator.call(
        "POST",
        "/certificates/import",
        token=token,
        json={
            "domainBindingId": binding_id,
            "certificateChain": issued.chain(),
            "privateKey": issued.key_pem(),
        },
    )


async def test_bad_imports_are_400_and_store_nothing(
    coordinator: Coordinator, admin_token: str, binding: dict[str, Any]
) -> None:
    before = await database_dump(ignore={"last_used_at"})
    issued = issue_for([DOMAIN])
    other = issue_for([DOMAIN])
    response = await coordinator.call(
        "POST",
        "/certificates/import",
        token=admin_token,
        json={
            "domainBindingId": binding["id"],
            "certificateChain": issued.chain(),
            "privateKey": issued.key_pem(other.key),
        },
    )
    assert assert_error(response, 400, "invalid_request")["details"]["rule"] == "key-matches"
    response = await coordinator.call(
        "POST",
        "/certificates/import",
        token=admin_token,
        json={
            "domainBindingId": binding["id"],
            "certificateChain": "x" * 70_000,
            "privateKey": "k",
        },
    )
    assert_error(response, 400, "invalid_request")
    assert await database_dump(ignore={"last_used_at"}) == before


async def test_scope_permissions_and_audit(
    coordinator: Coordinator, admin_token: str, binding: dict[str, Any]
) -> None:
    status, answer, _ = await _import(coordinator, admin_token, binding["id"])
    assert status == 201, answer
    certificate_id = answer["certificateId"]

    # A token scoped to another project sees nothing, and cannot import onto the binding.
    other_project = await create_project(coordinator, admin_token, "Other")
    outsider = await scoped_token(
        coordinator,
        admin_token,
        ["certificates:read", "certificates:write"],
        projectIds=[other_project],
    )
    status, listed, _ = await coordinator.call("GET", "/certificates", token=outsider)
    assert (status, listed["items"]) == (200, [])
    response = await coordinator.call("GET", f"/certificates/{certificate_id}", token=outsider)
    assert_error(response, 404, "not_found")
    assert_error(await _import(coordinator, outsider, binding["id"]), 404, "not_found")

    reader = await scoped_token(coordinator, admin_token, ["certificates:read"])
    status, shown, _ = await coordinator.call(
        "GET", f"/certificates/{certificate_id}", token=reader
    )
    assert status == 200, shown
    assert_error(await _import(coordinator, reader, binding["id"]), 403, "forbidden")

    [event] = [
        e
        for e in await audit_events(coordinator, admin_token)
        if e["eventType"] == "certificate.imported"
    ]
    assert event["aggregateId"] == certificate_id
    assert "PRIVATE KEY" not in str(event)


async def test_commands_refuse_what_cannot_be_done(
    coordinator: Coordinator, admin_token: str, binding: dict[str, Any]
) -> None:
    body = {"domainBindingId": binding["id"]}
    response = await coordinator.call(
        "POST", "/certificates/issue-or-renew", token=admin_token, json=body
    )
    assert "not confirmed" in assert_error(response, 409, "conflict")["message"]

    status, answer, _ = await coordinator.call(
        "POST",
        f"/domain-bindings/{binding['id']}/ownership-confirmations",
        token=admin_token,
        json={"method": "manual", "reason": "test"},
    )
    assert status == 200, answer
    before = await database_dump(ignore={"last_used_at"})
    response = await coordinator.call(
        "POST", "/certificates/issue-or-renew", token=admin_token, json=body
    )
    assert_error(response, 503, "unavailable")  # no agent connected: nothing requested
    assert await database_dump(ignore={"last_used_at"}) == before

    status, imported, _ = await _import(coordinator, admin_token, binding["id"])
    assert status == 201, imported
    certificate_id = imported["certificateId"]
    status, check, _ = await coordinator.call(
        "GET", f"/domain-bindings/{binding['id']}/delete-check", token=admin_token
    )
    assert status == 200, check
    assert check["safeToDelete"] is True
    assert [(w["kind"], w["relatedEntityId"]) for w in check["warnings"]] == [
        ("active-certificate", certificate_id)
    ]
    response = await coordinator.call(
        "POST", f"/certificates/{certificate_id}/retries", token=admin_token, json={}
    )
    assert_error(response, 409, "conflict")
    delete = {"confirmation": {"certificateId": certificate_id}}
    response = await coordinator.call(
        "DELETE", f"/certificates/{certificate_id}", token=admin_token, json=delete
    )
    assert_error(response, 409, "conflict")  # in use
    status, answer, _ = await coordinator.call(
        "POST", f"/certificates/{certificate_id}/revoke", token=admin_token, json={}
    )
    assert (status, answer) == (200, {"certificateId": certificate_id})
    wrong = {"confirmation": {"certificateId": "crt_other"}}
    response = await coordinator.call(
        "DELETE", f"/certificates/{certificate_id}", token=admin_token, json=wrong
    )
    assert_error(response, 400, "invalid_request")
    status, answer, _ = await coordinator.call(
        "DELETE", f"/certificates/{certificate_id}", token=admin_token, json=delete
    )
    assert status == 200, answer
    events = [e["eventType"] for e in await audit_events(coordinator, admin_token)]
    assert {"certificate.imported", "certificate.revoked", "certificate.deleted"} <= set(events)
