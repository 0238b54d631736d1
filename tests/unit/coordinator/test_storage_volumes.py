"""Storage volumes over the API: shapes, validation, scope, delete-check and audit."""

from typing import Any
from urllib.parse import urlencode

from shared.messages import DeployPlan
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.support import assert_error, audit_events, database_dump
from tests.unit.coordinator.test_deployment_engine import create_deployment, make_world
from tests.unit.coordinator.test_environments_api import create_environment
from tests.unit.coordinator.test_projects_api import create_project, scoped_token
from tests.unit.coordinator.test_resources_api import create_resource, workspace

ITEM_KEYS = {
    "id",
    "projectId",
    "environmentId",
    "serverId",
    "name",
    "slug",
    "kind",
    "sourcePath",
    "description",
    "lifecycleStatus",
    "backupRelationship",
    "attachmentCount",
    "attachments",
    "createdAt",
    "deletedAt",
}


async def create_volume(
    coordinator: Coordinator, token: str, project_id: str, environment_id: str, **extra: Any
) -> str:
    body = {"projectId": project_id, "environmentId": environment_id, "name": "Data"}
    body["kind"] = "named-volume"
    status, answer, _ = await coordinator.call(
        "POST", "/storage-volumes", token=token, json={**body, **extra}
    )
    assert status == 201, answer
    assert answer["id"].startswith("svol_")
    return str(answer["id"])


async def show(coordinator: Coordinator, token: str, volume_id: str) -> dict[str, Any]:
    status, body, _ = await coordinator.call("GET", f"/storage-volumes/{volume_id}", token=token)
    assert status == 200, body
    assert body["schemaVersion"] == "storage-volumes.show/v1"
    return dict(body["storageVolume"])


async def test_create_attach_show_rename_detach_delete(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    volume_id = await create_volume(coordinator, admin_token, project_id, environment_id)
    item = await show(coordinator, admin_token, volume_id)
    assert set(item) == ITEM_KEYS
    assert item["kind"] == "named-volume"
    assert item["slug"] == "data"
    assert item["sourcePath"] == f"berth-{volume_id.lower()}"
    assert item["serverId"] is None
    assert item["attachmentCount"] == 0
    assert item["backupRelationship"] == {"retentionRequired": False, "reason": None}

    status, body, _ = await coordinator.call(
        "POST",
        f"/resources/{resource_id}/storage-attachments",
        token=admin_token,
        json={"storageVolumeId": volume_id, "destinationPath": "/var/lib/app/"},
    )
    assert status == 201, body
    attachment_id = body["id"]
    item = await show(coordinator, admin_token, volume_id)
    assert item["attachmentCount"] == 1
    (attached,) = item["attachments"]
    assert attached["attachmentId"] == attachment_id
    assert attached["resourceId"] == resource_id
    assert attached["resourceName"] == "Web App"
    assert attached["destinationPath"] == "/var/lib/app"
    assert attached["mountMode"] == "read-write"

    status, body, _ = await coordinator.call("GET", f"/resources/{resource_id}", token=admin_token)
    assert status == 200, body
    (summary,) = body["storageAttachments"]
    assert summary["id"] == attachment_id
    assert summary["storageVolumeId"] == volume_id
    assert summary["storageVolumeKind"] == "named-volume"

    # Attached: the delete-check names the resource and the delete is refused, nothing changed.
    status, body, _ = await coordinator.call(
        "GET", f"/storage-volumes/{volume_id}/delete-check", token=admin_token
    )
    assert status == 200, body
    assert body["safeToDelete"] is False
    assert [b["relatedEntityId"] for b in body["blockers"]] == [resource_id]
    before = await database_dump()
    error = assert_error(
        await coordinator.call("DELETE", f"/storage-volumes/{volume_id}", token=admin_token),
        409,
        "conflict",
    )
    assert error["details"]["reasonCode"] == "active-attachment"
    assert await database_dump() == before

    status, body, _ = await coordinator.call(
        "POST", f"/storage-volumes/{volume_id}/rename", token=admin_token, json={"name": "Uploads"}
    )
    assert status == 200, body
    assert (await show(coordinator, admin_token, volume_id))["slug"] == "uploads"

    status, body, _ = await coordinator.call(
        "DELETE", f"/resources/{resource_id}/storage-attachments/{attachment_id}", token=admin_token
    )
    assert (status, body) == (200, {"id": attachment_id})
    status, body, _ = await coordinator.call(
        "GET", f"/storage-volumes/{volume_id}/delete-check", token=admin_token
    )
    assert body["safeToDelete"] is True
    status, body, _ = await coordinator.call(
        "DELETE", f"/storage-volumes/{volume_id}", token=admin_token
    )
    assert (status, body) == (200, {"id": volume_id})
    assert_error(
        await coordinator.call("GET", f"/storage-volumes/{volume_id}", token=admin_token),
        404,
        "not_found",
    )
    events = [e["eventType"] for e in await audit_events(coordinator, admin_token)]
    volume_events = [e for e in events if e.startswith("storage-volume.")]
    assert volume_events == [
        "storage-volume.created",
        "storage-volume.attached",
        "storage-volume.renamed",
        "storage-volume.detached",
        "storage-volume.deleted",
    ]


async def test_bad_input_is_refused_with_the_envelope_and_nothing_written(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    volume_id = await create_volume(coordinator, admin_token, project_id, environment_id)
    base = {"projectId": project_id, "environmentId": environment_id, "name": "X"}
    before = await database_dump()
    for body in (
        {**base, "kind": "nfs"},
        {**base, "kind": "bind-mount"},
        {**base, "kind": "bind-mount", "sourcePath": "relative/dir"},
        {**base, "kind": "bind-mount", "sourcePath": "/"},
        {**base, "kind": "bind-mount", "sourcePath": "/var/run/docker.sock"},
        {**base, "kind": "bind-mount", "sourcePath": "/srv/../var/run/docker.sock"},
        {**base, "kind": "bind-mount", "sourcePath": "/proc/1"},
        {**base, "kind": "named-volume", "sourcePath": "/srv/data"},
        {**base, "kind": "named-volume", "name": "!!!"},
    ):
        assert_error(
            await coordinator.call("POST", "/storage-volumes", token=admin_token, json=body),
            400,
            "invalid_request",
        )
    for destination in ("relative", "/", "/proc", "/proc/self", "/sys/fs", "/dev", "/a/../b"):
        assert_error(
            await coordinator.call(
                "POST",
                f"/resources/{resource_id}/storage-attachments",
                token=admin_token,
                json={"storageVolumeId": volume_id, "destinationPath": destination},
            ),
            400,
            "invalid_request",
        )
    assert_error(
        await coordinator.call(
            "POST",
            f"/resources/{resource_id}/storage-attachments",
            token=admin_token,
            json={"storageVolumeId": volume_id, "destinationPath": "/d", "mountMode": "rw"},
        ),
        400,
        "invalid_request",
    )
    # A duplicate slug in the environment.
    assert_error(
        await coordinator.call(
            "POST",
            "/storage-volumes",
            token=admin_token,
            json={**base, "name": "data", "kind": "named-volume"},
        ),
        409,
        "conflict",
    )
    assert await database_dump() == before


async def test_volumes_of_other_environments_and_scopes_look_missing(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    other_environment = await create_environment(coordinator, admin_token, project_id, "staging")
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    elsewhere = await create_volume(coordinator, admin_token, project_id, other_environment)
    assert_error(
        await coordinator.call(
            "POST",
            f"/resources/{resource_id}/storage-attachments",
            token=admin_token,
            json={"storageVolumeId": elsewhere, "destinationPath": "/data"},
        ),
        400,
        "invalid_request",
    )
    other_project = await create_project(coordinator, admin_token, "Other")
    token = await scoped_token(
        coordinator,
        admin_token,
        ["storage-volumes:read", "storage-volumes:write"],
        projectIds=[other_project],
    )
    assert_error(
        await coordinator.call("GET", f"/storage-volumes/{elsewhere}", token=token),
        404,
        "not_found",
    )
    status, body, _ = await coordinator.call("GET", "/storage-volumes", token=token)
    assert (status, body["items"]) == (200, [])
    reader = await scoped_token(coordinator, admin_token, ["storage-volumes:read"])
    assert_error(
        await coordinator.call("DELETE", f"/storage-volumes/{elsewhere}", token=reader),
        403,
        "forbidden",
    )
    status, body, _ = await coordinator.call(
        "GET", f"/storage-volumes/count?environmentId={other_environment}", token=admin_token
    )
    assert (status, body) == (200, {"count": 1})
    # The audit trail follows the same scope: a volume's events belong to its environment.
    outsider = await scoped_token(
        coordinator, admin_token, ["audit-events:read"], projectIds=[other_project]
    )
    insider = await scoped_token(
        coordinator, admin_token, ["audit-events:read"], projectIds=[project_id]
    )
    assert [
        e for e in await audit_events(coordinator, outsider) if e["eventType"].startswith("storage")
    ] == []
    seen = await audit_events(coordinator, insider, aggregateId=elsewhere)
    assert [e["eventType"] for e in seen] == ["storage-volume.created"]


async def test_a_volume_lives_on_one_server_and_the_plan_refuses_another(
    coordinator: Coordinator, admin_token: str
) -> None:
    world = await make_world(coordinator, admin_token)
    other = await coordinator.add_server(admin_token, "elsewhere")
    volume_id = await create_volume(
        coordinator, admin_token, world.project_id, world.environment_id
    )
    status, body, _ = await coordinator.call(
        "POST",
        f"/resources/{world.resource_id}/storage-attachments",
        token=admin_token,
        json={"storageVolumeId": volume_id, "destinationPath": "/data", "mountMode": "read-only"},
    )
    assert status == 201, body
    # Not placed yet: the first deployment places it, on whichever server it targets.
    status, plan, _ = await coordinator.call(
        "GET", "/deployments/plan?" + urlencode(world.target()), token=admin_token
    )
    assert status == 200, plan
    assert plan["readiness"]["ready"] is True, plan
    assert plan["storage"]["volumes"] == [
        {
            "storageVolumeId": volume_id,
            "name": "Data",
            "kind": "named-volume",
            "destinationPath": "/data",
            "mountMode": "read-only",
            "serverId": None,
            "placement": "placed-by-this-deployment",
        }
    ]
    # A read-only volume is never written by two containers: no strategy warning.
    assert [w["code"] for w in plan["warnings"] if w["code"].startswith("rollout-")] == []
    deployment_id = await create_deployment(coordinator, admin_token, world)
    assert (await show(coordinator, admin_token, volume_id))["serverId"] == world.server_id
    status, shown, _ = await coordinator.call(
        "GET", f"/deployments/{deployment_id}", token=admin_token
    )
    mounts = shown["deployment"]["runtimePlan"]["execution"]["metadata"]["mounts"]
    assert [(m["volumeId"], m["destination"], m["readOnly"]) for m in mounts] == [
        (volume_id, "/data", True)
    ]
    # This (fake) agent does not advertise volumes.v1: it would run the app without its data,
    # so the deployment fails instead of being sent.
    await world.agent.connect()

    async def failed() -> bool:
        _, got, _ = await coordinator.call(
            "GET", f"/deployments/{deployment_id}", token=admin_token
        )
        return bool(got["deployment"]["status"] == "failed")

    await eventually(failed, what="deployment to fail")
    _, shown, _ = await coordinator.call("GET", f"/deployments/{deployment_id}", token=admin_token)
    assert shown["deployment"]["errorCode"] == "agent-volumes-unsupported"
    assert world.agent.count(DeployPlan) == 0
    await world.agent.close()

    elsewhere = {**world.target(), "serverId": other["id"]}
    status, plan, _ = await coordinator.call(
        "GET", "/deployments/plan?" + urlencode(elsewhere), token=admin_token
    )
    assert plan["readiness"]["reasonCodes"] == ["storage-volume-server-mismatch"], plan
    assert plan["storage"]["volumes"][0]["placement"] == "other-server"
    error = assert_error(
        await coordinator.call("POST", "/deployments", token=admin_token, json=elsewhere),
        409,
        "conflict",
    )
    assert error["details"]["reasonCodes"] == ["storage-volume-server-mismatch"]

    # A volume placed on another server than the resource's cannot be attached to it.
    placed = await create_volume(
        coordinator,
        admin_token,
        world.project_id,
        world.environment_id,
        name="Other",
        serverId=other["id"],
    )
    error = assert_error(
        await coordinator.call(
            "POST",
            f"/resources/{world.resource_id}/storage-attachments",
            token=admin_token,
            json={"storageVolumeId": placed, "destinationPath": "/other"},
        ),
        409,
        "conflict",
    )
    assert error["details"]["reasonCode"] == "storage-volume-server-mismatch"


async def test_a_project_with_volumes_cannot_be_deleted(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    volume_id = await create_volume(coordinator, admin_token, project_id, environment_id)
    status, _, _ = await coordinator.call(
        "POST", f"/projects/{project_id}/archive", token=admin_token, json={}
    )
    assert status == 200
    status, check, _ = await coordinator.call(
        "GET", f"/projects/{project_id}/delete-check", token=admin_token
    )
    assert check["eligible"] is False
    assert check["blockers"] == [
        {
            "kind": "storage-volumes",
            "relatedEntityId": None,
            "relatedEntityType": "storage-volume",
            "count": 1,
        }
    ]
    confirmation = {"confirmation": {"projectId": project_id}}
    assert_error(
        await coordinator.call(
            "DELETE", f"/projects/{project_id}", token=admin_token, json=confirmation
        ),
        409,
        "conflict",
    )
    status, _, _ = await coordinator.call(
        "DELETE", f"/storage-volumes/{volume_id}", token=admin_token
    )
    assert status == 200
    status, body, _ = await coordinator.call(
        "DELETE", f"/projects/{project_id}", token=admin_token, json=confirmation
    )
    assert (status, body) == (200, {"id": project_id})


async def test_runtime_cleanup_needs_a_server_and_never_touches_a_bind_mount(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    server = await coordinator.add_server(admin_token, "node-1")
    unplaced = await create_volume(coordinator, admin_token, project_id, environment_id)
    error = assert_error(
        await coordinator.call(
            "POST", f"/storage-volumes/{unplaced}/runtime-cleanup", token=admin_token, json={}
        ),
        409,
        "conflict",
    )
    assert error["details"]["reasonCode"] == "storage-volume-not-placed"
    # Its agent is offline: 503, retriable.
    error = assert_error(
        await coordinator.call(
            "POST",
            f"/storage-volumes/{unplaced}/runtime-cleanup",
            token=admin_token,
            json={"serverId": server["id"]},
        ),
        503,
        "unavailable",
    )
    bind = await create_volume(
        coordinator,
        admin_token,
        project_id,
        environment_id,
        name="media",
        kind="bind-mount",
        sourcePath="/srv/media",
        serverId=server["id"],
    )
    status, body, _ = await coordinator.call(
        "POST",
        f"/storage-volumes/{bind}/runtime-cleanup",
        token=admin_token,
        json={"dryRun": False},
    )
    assert status == 200, body
    assert body["candidates"] == []
    assert body["warnings"] == [
        {
            "code": "bind-mount-kept",
            "message": "a bind mount's host directory is the operator's: Berth never removes it",
            "target": "/srv/media",
        }
    ]
    assert body["server"]["id"] == server["id"]
    assert body["summary"] == {
        "inspectedCount": 0,
        "matchedCount": 0,
        "cleanedCount": 0,
        "skippedCount": 0,
        "blockedCount": 0,
    }
