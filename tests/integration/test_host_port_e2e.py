"""End to end: a resource's networkProfile.hostPort is published by the real Docker engine."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from tests.edge_proxy import Caddy, free_port
from tests.harness import Coordinator
from tests.integration.test_deploy_e2e import Stack, _stack
from tests.unit.coordinator.support import assert_error, database_dump

pytestmark = pytest.mark.docker

# The live agent reports samples and liveness on its own clock while the refused deploy runs;
# those rows say nothing about whether the refusal wrote anything.
AGENT_WRITTEN_TABLES = frozenset(
    {"runtime_samples", "runtime_sample_rollups", "monitoring_watermarks", "edge_proxy_states"}
)
AGENT_WRITTEN_COLUMNS = frozenset({"last_used_at", "last_seen_at", "last_connected_at"})

SERVE = (
    "mkdir -p /www && echo {text} > /www/index.html && "
    "httpd -f -p 8080 -h /www & trap 'kill $!; exit 0' TERM; wait"
)


@contextmanager
def held_port(port: int) -> Iterator[None]:
    """Something other than Berth listening on ``port`` on every address."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen()
        yield


async def _resource(stack: Stack, name: str, host_port: int, **runtime: Any) -> str:
    resource_id = str(
        (
            await stack.call(
                "POST",
                "/resources",
                {
                    "projectId": stack.project_id,
                    "environmentId": stack.environment_id,
                    "name": name,
                },
            )
        )["id"]
    )
    base = f"/resources/{resource_id}"
    image = {"kind": "docker-image", "imageName": "berth-test/busybox", "imageTag": "latest"}
    await stack.call("POST", f"{base}/source", {"source": image})
    await stack.call(
        "POST",
        f"{base}/network-profile",
        {"networkProfile": {"internalPort": 8080, "exposureMode": "none", "hostPort": host_port}},
    )
    await stack.call(
        "POST",
        f"{base}/runtime-profile",
        {"runtimeProfile": {"startCommand": SERVE.format(text=name), **runtime}},
    )
    await stack.call("POST", f"{base}/health-policy", {"healthCheck": {"enabled": False}})
    return resource_id


async def _deploy(stack: Stack, resource_id: str) -> tuple[int, Any]:
    status, body, _ = await stack.coordinator.call(
        "POST",
        "/deployments",
        token=stack.token,
        json={
            "projectId": stack.project_id,
            "environmentId": stack.environment_id,
            "resourceId": resource_id,
            "serverId": stack.server_id,
        },
    )
    return status, body


async def _direct(session: aiohttp.ClientSession, port: int) -> tuple[int, str]:
    async with session.get(f"http://127.0.0.1:{port}/") as response:
        return response.status, (await response.text()).strip()


async def test_host_ports_are_published_and_conflicts_are_clear(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    stack = await _stack(coordinator, admin_token, caddy, tmp_path)
    try:
        port = free_port()
        db = await _resource(stack, "db", port)
        status, body = await _deploy(stack, db)
        assert status == 201, body
        shown = await stack.finish(str(body["id"]))
        assert shown["deployment"]["status"] == "succeeded", shown
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert await _direct(session, port) == (200, "db")
            # A redeploy stops the old container first: one container can hold the port.
            status, body = await _deploy(stack, db)
            assert status == 201, body
            shown = await stack.finish(str(body["id"]))
            assert shown["deployment"]["status"] == "succeeded", shown
            assert await _direct(session, port) == (200, "db")
            running = [
                c
                for c in docker_client.containers.list(filters={"label": f"berth.resource-id={db}"})
            ]
            assert len(running) == 1

        # Another resource asking for the same port on this server: 409 at plan time.
        other = await _resource(stack, "cache", port)
        before = await database_dump(ignore=AGENT_WRITTEN_COLUMNS, skip_tables=AGENT_WRITTEN_TABLES)
        status, body = await _deploy(stack, other)
        assert_error((status, body, {"X-Request-ID": body["requestId"]}), 409, "conflict")
        assert body["error"]["details"]["reasonCodes"] == ["host-port-conflict"]
        assert (
            await database_dump(ignore=AGENT_WRITTEN_COLUMNS, skip_tables=AGENT_WRITTEN_TABLES)
            == before
        )
        plan = await stack.call(
            "GET",
            f"/deployments/plan?projectId={stack.project_id}&environmentId="
            f"{stack.environment_id}&resourceId={other}&serverId={stack.server_id}",
        )
        assert "host-port-conflict" in str(plan)
        # Several replicas cannot share one host port either.
        many = await _resource(stack, "many", free_port(), replicas=2)
        status, body = await _deploy(stack, many)
        assert status == 409, body
        assert body["error"]["details"]["reasonCodes"] == ["host-port-replicas"]

        # Held by something outside Berth: the deployment fails with a clear reason.
        taken = free_port()
        outside = await _resource(stack, "outside", taken)
        with held_port(taken):
            status, body = await _deploy(stack, outside)
            assert status == 201, body
            shown = await stack.finish(str(body["id"]))
        assert shown["deployment"]["status"] == "failed", shown
        assert "host-port-in-use" in str(shown), shown
        assert not docker_client.containers.list(
            all=True, filters={"label": f"berth.resource-id={outside}"}
        )
    finally:
        await stack.agent.stop()
