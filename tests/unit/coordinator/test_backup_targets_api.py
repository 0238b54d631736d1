"""Backup target routes against a real coordinator and database: bad input (400, nothing
stored), the outbound guard on the endpoint, masking, audit, permissions, organization-wide
scope, and deletion (an unknown target named by a backup request: the e2e test and
test_backup_policies.py). Backups into a real S3 server
are proven in tests/integration/test_backup_targets_e2e.py."""

from typing import Any

from tests.harness import Coordinator
from tests.unit.coordinator.support import assert_error, audit_events, database_dump
from tests.unit.coordinator.test_projects_api import create_project, scoped_token

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def _target(**changes: Any) -> dict[str, Any]:
    return {
        "name": "offsite",
        "endpointUrl": "https://s3.example.com",
        "bucket": "berth-backups",
        "prefix": "prod/",
        "accessKeyId": "AKIAEXAMPLE",
        "secretAccessKey": SECRET,
        **changes,
    }


async def test_bad_targets_are_400_and_store_nothing(
    coordinator: Coordinator, admin_token: str
) -> None:
    before = await database_dump(ignore={"last_used_at"})
    cases: list[tuple[dict[str, Any], str]] = [
        # Private endpoints are refused unless the operator allows private targets.
        (_target(endpointUrl="http://127.0.0.1:9000"), "endpointUrl"),
        (_target(endpointUrl="http://10.0.0.2:9000"), "endpointUrl"),
        (_target(endpointUrl="http://169.254.169.254"), "endpointUrl"),
        (_target(endpointUrl="http://localhost:9000"), "endpointUrl"),
        (_target(endpointUrl="ftp://s3.example.com"), "endpointUrl"),
        (_target(bucket="Bad_Bucket"), "bucket"),
        (_target(bucket="ab"), "bucket"),
        (_target(prefix="a/../b"), "prefix"),
        (_target(kind="gcs"), "kind"),
        (_target(secretAccessKey=""), "secretAccessKey"),
    ]
    for body, field in cases:
        error = assert_error(
            await coordinator.call("POST", "/backup-targets", token=admin_token, json=body),
            400,
            "invalid_request",
        )
        assert field in str(error), (body, error)
        assert SECRET not in str(error)
    assert await database_dump(ignore={"last_used_at"}) == before


async def test_a_target_is_masked_audited_scoped_and_needs_its_permission(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, created, _ = await coordinator.call(
        "POST", "/backup-targets", token=admin_token, json=_target()
    )
    assert status == 201, created
    status, listed, _ = await coordinator.call("GET", "/backup-targets", token=admin_token)
    assert status == 200, listed
    [item] = listed["items"]
    assert item["id"] == created["id"]
    assert item["secretAccessKey"] == "********"
    assert item["prefix"] == "prod/"
    assert item["kind"] == "s3"
    assert SECRET not in str(listed)
    shown = await coordinator.call("GET", f"/backup-targets/{created['id']}", token=admin_token)
    assert shown[0] == 200
    assert SECRET not in str(shown[1])
    events = await audit_events(coordinator, admin_token)
    [event] = [e for e in events if e["eventType"] == "backup-target.created"]
    assert SECRET not in str(event)
    assert_error(
        await coordinator.call("POST", "/backup-targets", token=admin_token, json=_target()),
        409,
        "conflict",
    )
    writer = await scoped_token(coordinator, admin_token, ["dependency-resources:write"])
    assert_error(
        await coordinator.call("POST", "/backup-targets", token=writer, json=_target(name="b")),
        403,
        "forbidden",
    )
    assert_error(
        await coordinator.call("GET", f"/backup-targets/{created['id']}", token=writer),
        403,
        "forbidden",
    )
    assert_error(
        await coordinator.call("GET", "/backup-targets/bkt_missing", token=admin_token),
        404,
        "not_found",
    )
    # A token narrowed to a project reaches no organization-wide target: 404, empty, 403.
    project_id = await create_project(coordinator, admin_token, "shop")
    narrow = await scoped_token(
        coordinator,
        admin_token,
        ["backup-targets:read", "backup-targets:write"],
        projectIds=[project_id],
    )
    assert_error(
        await coordinator.call("GET", f"/backup-targets/{created['id']}", token=narrow),
        404,
        "not_found",
    )
    status, empty, _ = await coordinator.call("GET", "/backup-targets", token=narrow)
    assert status == 200
    assert empty["items"] == []
    assert_error(
        await coordinator.call("POST", "/backup-targets", token=narrow, json=_target(name="n")),
        403,
        "forbidden",
    )
    status, deleted, _ = await coordinator.call(
        "DELETE", f"/backup-targets/{created['id']}", token=admin_token
    )
    assert status == 200, deleted
    assert_error(
        await coordinator.call("GET", f"/backup-targets/{created['id']}", token=admin_token),
        404,
        "not_found",
    )
    events = await audit_events(coordinator, admin_token)
    assert any(e["eventType"] == "backup-target.deleted" for e in events)
