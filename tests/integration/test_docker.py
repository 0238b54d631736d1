"""Real Docker engine: the agent reports it, checks it, and never stops workloads on link loss."""

from pathlib import Path

import docker
import pytest

from tests.harness import TEST_LABEL, TEST_SESSION, AgentProcess, Coordinator, eventually

pytestmark = pytest.mark.docker
TEST_IMAGE = "berth-test/busybox:latest"


async def test_agent_reports_real_docker_and_workloads_survive_link_loss(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    request: pytest.FixtureRequest,
) -> None:
    engine_version = docker_client.version()["Version"]
    container = docker_client.containers.run(
        TEST_IMAGE,
        ["sleep", "600"],
        detach=True,
        labels={
            TEST_LABEL: TEST_SESSION,
            "berth.test-name": request.node.name,
            "berth.resource-id": "res_test",
        },
    )
    server = await coordinator.add_server(admin_token, "docker-host")
    agent = AgentProcess(tmp_path / "agent")
    code, out = await agent.enroll(coordinator.url, server["joinToken"])
    assert code == 0, out
    await agent.start()
    try:

        async def online() -> bool:
            return await coordinator.agent_status(admin_token, server["id"]) == "online"

        await eventually(online, what="agent online")
        _, body, _ = await coordinator.call("GET", f"/servers/{server['id']}", token=admin_token)
        assert body["server"]["agent"]["facts"]["dockerVersion"] == engine_version

        _, report, _ = await coordinator.call(
            "POST", f"/servers/{server['id']}/connectivity-tests", token=admin_token
        )
        docker_check = next(c for c in report["checks"] if c["name"] == "docker-daemon")
        assert docker_check["status"] == "passed", docker_check
        assert docker_check["metadata"]["dockerVersion"] == engine_version
        assert report["status"] == "healthy"

        # Link loss (coordinator restart) and agent loss (process stop) leave workloads alone.
        await coordinator.restart()
        await eventually(online, what="agent back online")
        await agent.stop()
        container.reload()
        assert container.status == "running"
    finally:
        await agent.stop()


async def test_connectivity_reports_unreachable_docker_as_failed_check(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    server = await coordinator.add_server(admin_token, "no-docker")
    agent = AgentProcess(
        tmp_path / "agent", env={"DOCKER_HOST": f"unix://{tmp_path}/no-such-docker.sock"}
    )
    assert (await agent.enroll(coordinator.url, server["joinToken"]))[0] == 0
    await agent.start()
    try:

        async def online() -> bool:
            return await coordinator.agent_status(admin_token, server["id"]) == "online"

        await eventually(online, what="agent online without docker")
        _, body, _ = await coordinator.call("GET", f"/servers/{server['id']}", token=admin_token)
        assert body["server"]["agent"]["facts"]["dockerVersion"] is None
        _, report, _ = await coordinator.call(
            "POST", f"/servers/{server['id']}/connectivity-tests", token=admin_token
        )
        docker_check = next(c for c in report["checks"] if c["name"] == "docker-daemon")
        assert docker_check["status"] == "failed"
        assert report["status"] == "degraded"
    finally:
        await agent.stop()
    assert docker_client.ping()
