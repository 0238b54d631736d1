"""Capacity inspect and prune through a real agent and the real Docker engine."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.harness import TEST_LABEL, TEST_SESSION, Coordinator
from tests.integration.stacks import Workload, workload

pytestmark = pytest.mark.docker

IMAGE = "berth-test/busybox:latest"


@pytest.fixture
def test_volume(docker_client: docker.DockerClient) -> Iterator[Any]:
    """A named volume labelled for this session, removed at the end."""
    volume = docker_client.volumes.create(labels={TEST_LABEL: TEST_SESSION})
    try:
        yield volume
    finally:
        volume.remove(force=True)


def stopped_leftover(client: docker.DockerClient, workload: Workload, volume: Any) -> Any:
    """A stopped, Berth-managed container of the resource from a deployment nobody knows
    (so not a rollback candidate), with a volume mounted: what a prune is for."""
    return client.containers.create(
        IMAGE,
        ["sh", "-c", "exit 0"],
        labels={
            "berth.managed": "true",
            "berth.resource-id": workload.resource_id,
            "berth.deployment-id": "dep_000000000000gone000000000",
            TEST_LABEL: TEST_SESSION,
        },
        volumes={volume.name: {"bind": "/data", "mode": "rw"}},
    )


async def deployed(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    agent_env: dict[str, str] | None = None,
) -> Workload:
    """An agent with one running deployment (a small web server)."""
    # httpd answers the default HTTP health check, so the deployment succeeds and keeps running.
    serve = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"
    stack = await workload(
        coordinator, admin_token, tmp_path / "agent", serve, agent_env=agent_env, health_check=True
    )
    await stack.deploy()
    return stack


async def test_inspect_reports_real_disk_and_memory(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await deployed(coordinator, admin_token, tmp_path)
    try:
        answer = await stack.call("GET", f"/servers/{stack.server_id}/capacity")
        assert answer["schemaVersion"] == "servers.capacity.inspect/v1"
        assert answer["server"]["id"] == stack.server_id
        root = next(d for d in answer["disk"] if d["mount"] == "/" or d["path"] == "/")
        assert root["size"] > 0
        assert 0 < root["used"] <= root["size"]
        assert 0 <= root["usePercent"] <= 100
        assert answer["memory"]["total"] > 0
        assert 0 < answer["memory"]["available"] <= answer["memory"]["total"]
        assert answer["cpu"]["logicalCores"] >= 1
        [running] = [c for c in stack.containers(docker_client) if c.status == "running"]
        mine = [c for c in answer["appaloftContainers"] if c["id"].startswith(running.id[:12])]
        assert mine, answer["appaloftContainers"]
        assert mine[0]["running"] is True
        assert mine[0]["resourceId"] == stack.resource_id
        assert mine[0]["deploymentId"] == stack.deployments[-1]
    finally:
        await stack.agent.stop()


async def test_prune_dry_run_lists_and_real_prune_spares_running_and_volumes(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    test_volume: Any,
) -> None:
    stack = await deployed(coordinator, admin_token, tmp_path)
    try:
        leftover = stopped_leftover(docker_client, stack, test_volume)
        [running] = [c for c in stack.containers(docker_client) if c.status == "running"]
        path = f"/servers/{stack.server_id}/capacity/prune"

        dry = await stack.call("POST", path, {"categories": ["stopped-containers"]})
        assert dry["dryRun"] is True
        by_id = {c["id"]: c for c in dry["candidates"]}
        assert leftover.id in by_id, dry["candidates"]
        assert by_id[leftover.id]["action"] == "matched"
        assert by_id[leftover.id]["category"] == "stopped-containers"
        assert all(c["action"] != "pruned" for c in dry["candidates"])
        assert running.id not in by_id  # running containers are never even candidates
        leftover.reload()  # still there: a dry run deletes nothing
        assert dry["protectedDeploymentCount"] >= 1

        real = await stack.call(
            "POST", path, {"dryRun": False, "categories": ["stopped-containers"]}
        )
        assert real["dryRun"] is False
        pruned = [c for c in real["candidates"] if c["action"] == "pruned"]
        assert leftover.id in {c["id"] for c in pruned}, real["candidates"]
        with pytest.raises(docker.errors.NotFound):
            leftover.reload()
        running.reload()
        assert running.status == "running"
        test_volume.reload()  # the mounted volume survived its container
        events = await stack.call("GET", "/audit-events?limit=500")
        assert any(e["eventType"] == "server.capacity-pruned" for e in events["items"])
    finally:
        await stack.agent.stop()
