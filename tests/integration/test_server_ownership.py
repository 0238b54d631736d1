"""Agents sharing one Docker engine: each lists, samples, routes and prunes only the containers
its own server created (the ``berth.server-id`` label), never another server's."""

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from agent.monitoring.engine import DockerEngine
from agent.runtime import SERVER_LABEL
from agent.runtime.docker import DockerRuntime
from tests.edge_proxy import Caddy
from tests.harness import TEST_LABEL, TEST_SESSION, Coordinator, eventually
from tests.integration.stacks import start_agent

pytestmark = pytest.mark.docker

IMAGE = "berth-test/busybox:latest"
OTHER_SERVER = "srv_0000000000000000other0000"


def _managed(
    client: docker.DockerClient,
    resource: str,
    server_id: str | None,
    *,
    running: bool,
    published: bool = False,
) -> Any:
    """A Berth-managed container of ``resource``, made by ``server_id``'s agent (None: made
    before containers carried the label)."""
    labels = {
        "berth.managed": "true",
        "berth.resource-id": resource,
        "berth.deployment-id": f"dep_{uuid.uuid4().hex[:24]}",
        "berth.hostnames": f"{resource}.example.test",
        "berth.path-prefix": "/",
        TEST_LABEL: TEST_SESSION,
    }
    if server_id is not None:
        labels[SERVER_LABEL] = server_id
    command = ["sleep", "600"] if running else ["true"]
    # A published port is what makes a running container routable by the agent's edge.
    # (The SDK's stubs want a host port; None asks Docker for an ephemeral one.)
    ports: Any = {"8080/tcp": ("127.0.0.1", None)} if published else None
    container = client.containers.create(IMAGE, command, labels=labels, ports=ports)
    if running:
        container.start()
    return container


async def test_runtime_and_engine_leave_other_servers_containers_alone(
    docker_client: docker.DockerClient,
) -> None:
    resource = f"res_{uuid.uuid4().hex[:20]}"
    mine = _managed(docker_client, resource, "srv_mine", running=True)
    legacy = _managed(docker_client, resource, None, running=True)
    theirs = _managed(docker_client, resource, OTHER_SERVER, running=True)
    runtime = DockerRuntime(extra_labels={}, server_id="srv_mine")
    try:
        listed = {c.container_id for c in await runtime.list_managed(resource)}
        assert mine.id in listed
        assert legacy.id in listed  # unlabelled: created before the label, still ours
        assert theirs.id not in listed
        engine = DockerEngine(runtime, asyncio.get_running_loop(), server_id="srv_mine")
        sampled = {c.container_id for c in await asyncio.to_thread(engine.running_containers)}
        assert {mine.id, legacy.id} <= sampled
        assert theirs.id not in sampled
    finally:
        await runtime.close()


async def test_prune_candidates_are_only_this_servers(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    agent, server_id = await start_agent(coordinator, admin_token, tmp_path / "agent")
    try:
        resource = f"res_{uuid.uuid4().hex[:20]}"
        mine = _managed(docker_client, resource, server_id, running=False)
        theirs = _managed(docker_client, resource, OTHER_SERVER, running=False)
        status, dry, _ = await coordinator.call(
            "POST",
            f"/servers/{server_id}/capacity/prune",
            token=admin_token,
            json={"categories": ["stopped-containers"]},
        )
        assert status == 200, dry
        candidates = {c["id"] for c in dry["candidates"]}
        assert mine.id in candidates, dry["candidates"]
        assert theirs.id not in candidates
        status, report, _ = await coordinator.call(
            "GET", f"/servers/{server_id}/capacity", token=admin_token
        )
        assert status == 200, report
        listed = {c["id"] for c in report["appaloftContainers"]}
        assert any(mine.id.startswith(c) or c.startswith(mine.id[:12]) for c in listed), listed
        assert not any(theirs.id.startswith(c) or c.startswith(theirs.id[:12]) for c in listed)
    finally:
        await agent.stop()


async def test_routes_are_restored_only_for_this_servers_containers(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    caddy: Caddy,
) -> None:
    ours = f"res_{uuid.uuid4().hex[:20]}"
    theirs = f"res_{uuid.uuid4().hex[:20]}"
    # Running before the agent starts: it restores the routes of what it finds, at once, in
    # Docker's listing order (newest first), so theirs would be routed before ours.
    _managed(docker_client, ours, None, running=True, published=True)
    _managed(docker_client, theirs, OTHER_SERVER, running=True, published=True)
    env = {
        "BERTH_AGENT_EDGE_ADMIN_URL": caddy.admin_url,
        "BERTH_AGENT_EDGE_LISTEN": f"127.0.0.1:{caddy.http_port}",
    }
    agent, _ = await start_agent(coordinator, admin_token, tmp_path / "agent", env=env)
    try:
        async with aiohttp.ClientSession() as http:

            async def route(resource: str) -> int:
                async with http.get(f"{caddy.admin_url}/id/berth-{resource}") as answer:
                    return answer.status

            async def ours_routed() -> bool:
                return await route(ours) == 200

            await eventually(ours_routed, what="the route of this server's container")
            # Restored in the same pass, before ours: had it been routed, it would be there now.
            assert await route(theirs) == 404
    finally:
        await agent.stop()
