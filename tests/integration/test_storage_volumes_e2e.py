"""Storage volumes end to end: coordinator -> real agent process -> real Docker volumes/binds."""

from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.harness import Coordinator, eventually
from tests.integration.stacks import TERMINAL_STATUSES, Workload, workload

pytestmark = pytest.mark.docker

# Each container appends "start <hostname>" when it starts and "stop <hostname>" when Docker
# stops it, to the file on the volume: the file's order shows what ran when, and that the data
# outlived every container.
JOURNAL = (
    "echo start $(hostname) >> /data/journal; "
    "trap 'echo stop $(hostname) >> /data/journal; exit 0' TERM; sleep 100000 & wait"
)


async def _runtime(stack: Workload, **profile: Any) -> None:
    await stack.configure(
        "runtime-profile", {"runtimeProfile": {"startCommand": JOURNAL, **profile}}
    )


async def _volume(stack: Workload, **body: Any) -> str:
    answer = await stack.call(
        "POST",
        "/storage-volumes",
        {"projectId": stack.project_id, "environmentId": stack.environment_id, **body},
    )
    return str(answer["id"])


async def _attach(stack: Workload, volume_id: str, destination: str = "/data") -> str:
    answer = await stack.call(
        "POST",
        f"/resources/{stack.resource_id}/storage-attachments",
        {"storageVolumeId": volume_id, "destinationPath": destination},
    )
    return str(answer["id"])


def _running(client: docker.DockerClient, stack: Workload) -> Any:
    (container,) = stack.containers(client)
    return container


def _journal(client: docker.DockerClient, stack: Workload) -> list[str]:
    code, out = _running(client, stack).exec_run(["cat", "/data/journal"])
    assert code == 0, out
    return [line for line in out.decode().splitlines() if line]


async def _plan(stack: Workload) -> dict[str, Any]:
    query = (
        f"projectId={stack.project_id}&environmentId={stack.environment_id}"
        f"&resourceId={stack.resource_id}&serverId={stack.server_id}"
    )
    answer: dict[str, Any] = await stack.call("GET", f"/deployments/plan?{query}")
    return answer


async def test_volume_data_survives_redeploy_and_rollback_and_recreate_stops_first(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", JOURNAL)
    try:
        volume_id = await _volume(stack, name="data", kind="named-volume")
        await _attach(stack, volume_id)
        await _runtime(stack, rolloutStrategy="recreate")
        plan = await _plan(stack)
        assert plan["storage"]["rolloutStrategy"] == "recreate"
        assert plan["storage"]["downtime"] is True
        (planned,) = plan["storage"]["volumes"]
        assert planned["placement"] == "placed-by-this-deployment"
        assert "rollout-recreate-downtime" in [w["code"] for w in plan["warnings"]]

        first = await stack.deploy()
        shown = await stack.call("GET", f"/storage-volumes/{volume_id}")
        assert shown["storageVolume"]["serverId"] == stack.server_id
        name = f"berth-{volume_id.lower()}"
        volume = docker_client.volumes.get(name)
        assert volume.attrs["Labels"]["berth.storage-volume-id"] == volume_id
        assert volume.attrs["Labels"]["berth.managed"] == "true"
        mounts = _running(docker_client, stack).attrs["Mounts"]
        assert [(m["Type"], m["Name"], m["Destination"], m["RW"]) for m in mounts] == [
            ("volume", name, "/data", True)
        ]
        one = _running(docker_client, stack).attrs["Config"]["Hostname"]
        assert _journal(docker_client, stack) == [f"start {one}"]

        # Redeploy with recreate: the old container stopped before the new one started.
        await stack.deploy()
        two = _running(docker_client, stack).attrs["Config"]["Hostname"]
        assert _journal(docker_client, stack) == [f"start {one}", f"stop {one}", f"start {two}"]

        # Roll back to the first deployment: same volume, same data, one more start.
        answer = await stack.call(
            "POST",
            f"/deployments/{stack.deployments[-1]}/rollback",
            {"rollbackCandidateDeploymentId": first},
        )

        async def rolled_back() -> bool:
            got = await stack.call("GET", f"/deployments/{answer['id']}")
            return got["deployment"]["status"] in TERMINAL_STATUSES

        await eventually(rolled_back, timeout=90, what="rollback to end")
        got = await stack.call("GET", f"/deployments/{answer['id']}")
        assert got["deployment"]["status"] == "succeeded", got
        three = _running(docker_client, stack).attrs["Config"]["Hostname"]
        assert _journal(docker_client, stack) == [
            f"start {one}",
            f"stop {one}",
            f"start {two}",
            f"stop {two}",
            f"start {three}",
        ]

        # Blue-green (the default): the new container starts while the old one still runs.
        await _runtime(stack)
        plan = await _plan(stack)
        assert plan["storage"]["rolloutStrategy"] == "blue-green"
        assert plan["storage"]["volumes"][0]["placement"] == "on-target-server"
        assert "rollout-shared-volume" in [w["code"] for w in plan["warnings"]]
        await stack.deploy()
        four = _running(docker_client, stack).attrs["Config"]["Hostname"]
        assert _journal(docker_client, stack)[-2:] == [f"start {four}", f"stop {three}"]

        # Attached: the volume cannot be deleted; the Docker volume is untouched.
        status, body, _ = await coordinator.call(
            "DELETE", f"/storage-volumes/{volume_id}", token=admin_token
        )
        assert status == 409, body
        assert docker_client.volumes.get(name).name == name

        # Runtime cleanup: a dry run by default, blocked while attached, audited when it removes.
        cleanup = f"/storage-volumes/{volume_id}/runtime-cleanup"
        answer = await stack.call("POST", cleanup, {})
        assert answer["schemaVersion"] == "storage-volumes.cleanup-runtime/v1"
        assert answer["dryRun"] is True
        assert answer["server"]["id"] == stack.server_id
        assert [(c["target"], c["action"], c["blockedReason"]) for c in answer["candidates"]] == [
            (name, "blocked", "active-attachment")
        ]
        answer = await stack.call("POST", cleanup, {"dryRun": False})
        assert answer["dryRun"] is True  # attached: never removed
        assert docker_client.volumes.get(name).name == name
        (attachment,) = (await stack.call("GET", f"/storage-volumes/{volume_id}"))["storageVolume"][
            "attachments"
        ]
        await stack.call(
            "DELETE",
            f"/resources/{stack.resource_id}/storage-attachments/{attachment['attachmentId']}",
        )
        answer = await stack.call("POST", cleanup, {})
        assert [(c["action"], c["blockedReason"]) for c in answer["candidates"]] == [
            ("matched", None)
        ]
        # Detached, but the running container still uses it until the next deployment.
        answer = await stack.call("POST", cleanup, {"dryRun": False})
        assert [(c["action"], c["blockedReason"]) for c in answer["candidates"]] == [
            ("blocked", "in-use")
        ]
        await stack.deploy()
        assert _running(docker_client, stack).attrs["Mounts"] == []
        answer = await stack.call("POST", cleanup, {"dryRun": False})
        assert answer["summary"]["cleanedCount"] == 1, answer
        assert [c["action"] for c in answer["candidates"]] == ["removed"]
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(name)
        await stack.call("DELETE", f"/storage-volumes/{volume_id}")
    finally:
        await stack.agent.stop()


async def test_bind_mounts_only_under_the_agents_allowed_roots(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    # A symlink under the root that points outside it is resolved, and refused, too.
    (allowed / "escape").symlink_to(outside)
    stack = await workload(
        coordinator,
        admin_token,
        tmp_path / "agent",
        JOURNAL,
        agent_env={"BERTH_AGENT_BIND_MOUNT_ROOTS": str(allowed)},
    )
    try:
        for source in (outside, allowed / "escape"):
            volume_id = await _volume(
                stack, name=f"v-{source.name}", kind="bind-mount", sourcePath=str(source)
            )
            attachment_id = await _attach(stack, volume_id)
            answer = await stack.call(
                "POST",
                "/deployments",
                {
                    "projectId": stack.project_id,
                    "environmentId": stack.environment_id,
                    "resourceId": stack.resource_id,
                    "serverId": stack.server_id,
                },
            )

            async def ended(deployment_id: str = answer["id"]) -> bool:
                got = await stack.call("GET", f"/deployments/{deployment_id}")
                return got["deployment"]["status"] in TERMINAL_STATUSES

            await eventually(ended, timeout=90, what="refused deployment to end")
            got = await stack.call("GET", f"/deployments/{answer['id']}")
            assert got["deployment"]["status"] == "failed", got
            assert got["deployment"]["errorCode"] == "bind-mount-not-allowed", got
            assert "outside the agent's allowed roots" in got["deployment"]["errorMessage"]
            assert stack.containers(docker_client, all=True) == []
            assert list(outside.iterdir()) == []
            await stack.call(
                "DELETE", f"/resources/{stack.resource_id}/storage-attachments/{attachment_id}"
            )

        # Under the root it mounts, and the container's writes land in the host directory.
        inside = allowed / "app-data"
        volume_id = await _volume(stack, name="files", kind="bind-mount", sourcePath=str(inside))
        await _attach(stack, volume_id)
        await stack.deploy()
        host = _running(docker_client, stack).attrs["Config"]["Hostname"]
        assert (inside / "journal").read_text() == f"start {host}\n"
    finally:
        await stack.agent.stop()
