"""Audit events follow the reader's scope: a project- or server-scoped token reads only events
about what it reaches, never another project's or server's."""

import json

from coordinator.db import models
from tests.harness import Coordinator
from tests.unit.coordinator.support import audit_events, mint_token
from tests.unit.coordinator.test_environments_api import create_environment
from tests.unit.coordinator.test_projects_api import create_project
from tests.unit.coordinator.test_resources_api import create_resource


async def _set_secret(coordinator: Coordinator, token: str, resource_id: str) -> None:
    status, body, _ = await coordinator.call(
        "POST",
        f"/resources/{resource_id}/variables",
        token=token,
        json={"key": "DB_PASSWORD", "value": "hunter2", "exposure": "runtime", "isSecret": True},
    )
    assert status in (200, 201, 204), body


async def test_project_scoped_token_reads_only_its_projects_events(
    coordinator: Coordinator, admin_token: str
) -> None:
    ids: dict[str, dict[str, str]] = {}
    for name in ("a", "b"):
        project = await create_project(coordinator, admin_token, f"Project {name}")
        environment = await create_environment(coordinator, admin_token, project)
        resource = await create_resource(coordinator, admin_token, project, environment)
        await _set_secret(coordinator, admin_token, resource)
        ids[name] = {"project": project, "environment": environment, "resource": resource}
    status, body, _ = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=admin_token,
        json={
            "displayName": "reader-a",
            "scope": {"permissions": ["audit-events:read"], "projectIds": [ids["a"]["project"]]},
        },
    )
    assert status == 201, body
    token = body["token"]

    everything = await audit_events(coordinator, admin_token)
    about_b = {e["id"] for e in everything if e["aggregateId"] in ids["b"].values()}
    about_a = {e["id"] for e in everything if e["aggregateId"] in ids["a"].values()}
    assert about_a
    assert about_b  # the admin sees both

    seen = await audit_events(coordinator, token)
    seen_ids = {e["id"] for e in seen}
    assert about_a <= seen_ids
    assert not about_b & seen_ids
    text = json.dumps(seen)
    for other in ids["b"].values():
        assert other not in text
    # Nothing unrelated to project A (bootstrap, other tokens, servers of nobody) slips through.
    assert {e["aggregateType"] for e in seen} <= {
        "project",
        "environment",
        "resource",
        "deploy-token",
    }
    # Asking by id for another project's aggregate gives nothing either.
    assert await audit_events(coordinator, token, aggregateId=ids["b"]["resource"]) == []
    # Paging with a small limit walks the same visible events.
    paged: list[str] = []
    cursor = None
    while True:
        path = "/audit-events?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page, _ = await coordinator.call("GET", path, token=token)
        assert status == 200, page
        paged += [e["id"] for e in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert paged == [e["id"] for e in seen]


async def test_server_scoped_token_reads_only_its_servers_events(
    coordinator: Coordinator, admin_token: str
) -> None:
    a = await coordinator.add_server(admin_token, "a")
    b = await coordinator.add_server(admin_token, "b")
    for server in (a, b):
        status, body, _ = await coordinator.call(
            "POST",
            f"/servers/{server['id']}/rename",
            token=admin_token,
            json={"name": "x" + server["id"][-4:]},
        )
        assert status == 200, body
    token = (
        await mint_token(coordinator, admin_token, ["audit-events:read"], server_ids=[a["id"]])
    )["token"]
    seen = await audit_events(coordinator, token)
    assert {e["aggregateId"] for e in seen if e["aggregateType"] == "server"} == {a["id"]}
    assert b["id"] not in json.dumps(seen)
    # An unscoped reader still sees the whole trail.
    wide = (await mint_token(coordinator, admin_token, ["audit-events:read"], name="wide"))["token"]
    assert len(await audit_events(coordinator, wide)) == await models.AuditEvent.all().count()
