"""End to end: API -> coordinator -> real agent process -> real Docker and real Caddy."""

import asyncio
import io
import logging
import signal
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import docker
import docker.errors
import pytest

from tests.edge_proxy import Caddy
from tests.harness import AgentProcess, Coordinator, eventually
from tests.integration.stacks import busybox_resource, start_agent

pytestmark = pytest.mark.docker
SECRET = "e2e-Secret-Value-93f1"
TERMINAL = {"succeeded", "failed", "canceled", "rolled-back"}


def _httpd_command(settle_seconds: float = 0) -> str:
    # The page shows GREETING; API_KEY reaches the container but is never printed.
    return (
        f"sleep {settle_seconds}; mkdir -p /www && echo $GREETING > /www/index.html && "
        "test -n \"$API_KEY\" && httpd -f -p 8080 -h /www & trap 'kill $!; exit 0' TERM; wait"
    )


@dataclass
class Stack:
    coordinator: Coordinator
    token: str
    caddy: Caddy
    agent: AgentProcess
    server_id: str
    project_id: str
    environment_id: str
    resource_id: str
    hostname: str

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        status, answer, _ = await self.coordinator.call(method, path, token=self.token, json=body)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer

    async def configure(self, path: str, body: dict[str, Any]) -> None:
        await self.call("POST", f"/resources/{self.resource_id}/{path}", body)

    async def deploy(self) -> str:
        answer = await self.call(
            "POST",
            "/deployments",
            {
                "projectId": self.project_id,
                "environmentId": self.environment_id,
                "resourceId": self.resource_id,
                "serverId": self.server_id,
            },
        )
        return str(answer["id"])

    async def status(self, deployment_id: str) -> str:
        answer = await self.call("GET", f"/deployments/{deployment_id}")
        return str(answer["deployment"]["status"])

    async def finish(self, deployment_id: str, timeout: float = 90) -> dict[str, Any]:
        async def terminal() -> bool:
            return await self.status(deployment_id) in TERMINAL

        await eventually(terminal, timeout=timeout, what=f"deployment {deployment_id} to end")
        answer: dict[str, Any] = await self.call("GET", f"/deployments/{deployment_id}")
        return answer

    async def page(self, session: aiohttp.ClientSession) -> tuple[int, str]:
        async with session.get(
            f"http://127.0.0.1:{self.caddy.http_port}/", headers={"Host": self.hostname}
        ) as response:
            return response.status, (await response.text()).strip()


async def _stack(
    coordinator: Coordinator,
    token: str,
    caddy: Caddy,
    tmp_path: Path,
    settle: float = 0,
    agent_env: dict[str, str] | None = None,
    server_extra: dict[str, Any] | None = None,
) -> Stack:
    agent, server_id = await start_agent(
        coordinator,
        token,
        tmp_path / "agent",
        name="edge-1",
        env={
            "BERTH_AGENT_EDGE_ADMIN_URL": caddy.admin_url,
            "BERTH_AGENT_EDGE_LISTEN": f"127.0.0.1:{caddy.http_port}",
            **(agent_env or {}),
        },
        server_extra=server_extra,
    )
    stack = Stack(coordinator, token, caddy, agent, server_id, "", "", "", "")
    await busybox_resource(stack, "web")
    stack.hostname = "web.production.shop.localhost"
    await stack.configure(
        "network-profile",
        {"networkProfile": {"internalPort": 8080, "exposureMode": "reverse-proxy"}},
    )
    await stack.configure(
        "runtime-profile", {"runtimeProfile": {"startCommand": _httpd_command(settle)}}
    )
    await stack.configure(
        "health-policy",
        {
            "healthCheck": {
                "enabled": True,
                "type": "http",
                "intervalSeconds": 0.3,
                "timeoutSeconds": 1,
                "retries": 30,
                "http": {"path": "/"},
            }
        },
    )
    await stack.configure("variables", {"key": "GREETING", "value": "v1", "exposure": "runtime"})
    await stack.configure("secrets", {"key": "API_KEY", "value": SECRET})
    return stack


def _resource_containers(client: docker.DockerClient, resource_id: str) -> list[Any]:
    return list(
        client.containers.list(all=True, filters={"label": f"berth.resource-id={resource_id}"})
    )


async def test_deploy_redeploy_without_failed_requests_failed_health_and_rollback(
    caplog: pytest.LogCaptureFixture,
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    stack = await _stack(coordinator, admin_token, caddy, tmp_path)
    try:
        first = await stack.deploy()
        shown = await stack.finish(first)
        assert shown["deployment"]["status"] == "succeeded", shown
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert await stack.page(session) == (200, "v1")

            # Redeploy with a changed variable while a client polls continuously.
            await stack.configure(
                "variables", {"key": "GREETING", "value": "v2", "exposure": "runtime"}
            )
            failures: list[str] = []
            bodies: list[str] = []
            stop = asyncio.Event()

            async def poll() -> None:
                while not stop.is_set():
                    try:
                        status, body = await stack.page(session)
                        bodies.append(body)
                        if status != 200 or body not in ("v1", "v2"):
                            failures.append(f"{status} {body!r}")
                    except aiohttp.ClientError as exc:
                        failures.append(repr(exc))
                    await asyncio.sleep(0.05)  # the load's pace (~20 req/s), not a wait

            poller = asyncio.create_task(poll())
            second = await stack.deploy()
            shown = await stack.finish(second)
            polled = len(bodies)

            async def polled_after_switch() -> bool:
                return len(bodies) >= polled + 5

            await eventually(polled_after_switch, what="more polls after the switch")
            stop.set()
            await poller
            assert shown["deployment"]["status"] == "succeeded", shown
            assert failures == []
            assert "v1" in bodies
            assert bodies[-1] == "v2"
            assert len(bodies) > 20

            # A candidate that fails its health check is removed; v2 keeps serving.
            await stack.configure(
                "health-policy",
                {
                    "healthCheck": {
                        "enabled": True,
                        "intervalSeconds": 0.2,
                        "timeoutSeconds": 1,
                        "retries": 3,
                        "http": {"path": "/missing"},
                    }
                },
            )
            third = await stack.deploy()
            shown = await stack.finish(third)
            assert shown["deployment"]["status"] == "failed"
            assert "health check failed" in shown["deployment"]["errorMessage"]
            assert await stack.page(session) == (200, "v2")
            running = [
                c
                for c in _resource_containers(docker_client, stack.resource_id)
                if c.status == "running"
            ]
            assert [c.labels["berth.deployment-id"] for c in running] == [second]

            # Roll back to the first deployment: same artifact and snapshot (GREETING=v1).
            answer = await stack.call(
                "POST", f"/deployments/{second}/rollback", {"rollbackCandidateDeploymentId": first}
            )
            shown = await stack.finish(answer["id"])
            assert shown["deployment"]["status"] == "succeeded", shown
            assert await stack.page(session) == (200, "v1")
            assert await stack.status(second) == "rolled-back"

            # Live health follows the resource's current policy: /missing fails, / passes.
            health = await stack.call("GET", f"/resources/{stack.resource_id}/health")
            assert health["overall"] == "degraded", health
            await stack.configure("health-policy/reset", {})
            health = await stack.call("GET", f"/resources/{stack.resource_id}/health")
            assert health["overall"] == "healthy", health
            # The URL the answer names is the one the real edge serves (the rollback's route).
            public = health["publicAccess"]
            assert (public["status"], public["url"]) == ("ready", f"http://{stack.hostname}")
            assert health["proxy"]["lastRouteRealizationDeploymentId"] == shown["deployment"]["id"]
            assert {c["name"] for c in health["checks"]} == {"runtime", "health"}

            # Runtime control through the coordinator and the real agent.
            stopped = await stack.call("POST", f"/resources/{stack.resource_id}/runtime/stop", {})
            assert stopped["status"] == "succeeded", stopped
            # Stopped on purpose: unavailable (503), not a proxy that lost its upstream (502).
            assert (await stack.page(session))[0] == 503
            started = await stack.call("POST", f"/resources/{stack.resource_id}/runtime/start", {})
            assert started["status"] == "succeeded", started

            async def serving_again() -> bool:
                try:
                    return await stack.page(session) == (200, "v1")
                except aiohttp.ClientError:
                    return False

            await eventually(serving_again, what="v1 served again after start")
            health = await stack.call("GET", f"/resources/{stack.resource_id}/health")
            control = health["latestRuntimeControl"]
            assert (control["operation"], control["status"], control["runtimeState"]) == (
                "start",
                "succeeded",
                "running",
            )

        # The secret reached the container, and nowhere else in plaintext.
        (container,) = [
            c
            for c in _resource_containers(docker_client, stack.resource_id)
            if c.status == "running"
        ]
        assert f"API_KEY={SECRET}" in container.attrs["Config"]["Env"]
        for deployment_id in (first, second, third):
            logs = await stack.call("GET", f"/deployments/{deployment_id}/logs")
            events = await stack.call("GET", f"/deployments/{deployment_id}/events")
            shown = await stack.call("GET", f"/deployments/{deployment_id}")
            assert SECRET not in str(logs) + str(events) + str(shown)
        database = coordinator.settings().effective_database_url
        if database.startswith("sqlite://"):
            path = Path(database.removeprefix("sqlite://"))
            for file in path.parent.glob(path.name + "*"):
                assert SECRET.encode() not in file.read_bytes(), file
        assert SECRET not in stack.agent.log()
        assert SECRET not in caplog.text  # the in-process coordinator's own log records
    finally:
        await stack.agent.stop()


async def test_agent_killed_mid_deploy_ends_failed_without_orphans(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    stack = await _stack(coordinator, admin_token, caddy, tmp_path)
    try:
        first = await stack.deploy()
        assert (await stack.finish(first))["deployment"]["status"] == "succeeded"

        # The next candidate takes a while to answer; the agent dies while it waits.
        await stack.configure(
            "runtime-profile",
            {"runtimeProfile": {"startCommand": _httpd_command(settle_seconds=30)}},
        )
        second = await stack.deploy()

        async def candidate_started() -> bool:
            return any(
                c.labels.get("berth.deployment-id") == second
                for c in _resource_containers(docker_client, stack.resource_id)
            )

        await eventually(candidate_started, what="candidate container")
        assert stack.agent.process is not None
        stack.agent.process.send_signal(signal.SIGKILL)
        await stack.agent.wait_exit()
        await stack.agent.start()

        shown = await stack.finish(second, timeout=60)
        assert shown["deployment"]["status"] == "failed", shown
        assert "restarted" in (shown["deployment"]["errorMessage"] or ""), (
            shown["deployment"],
            shown.get("latestFailure"),
        )

        async def no_orphans() -> bool:
            ids = {
                c.labels["berth.deployment-id"]
                for c in _resource_containers(docker_client, stack.resource_id)
            }
            return ids == {first}

        await eventually(no_orphans, what="the killed deployment's candidate removed")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert await stack.page(session) == (200, "v1")
    finally:
        await stack.agent.stop()


async def test_coordinator_restart_mid_deploy_still_ends_in_the_true_state(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    stack = await _stack(coordinator, admin_token, caddy, tmp_path, settle=3)
    try:
        deployment = await stack.deploy()

        async def running() -> bool:
            return await stack.status(deployment) == "running"

        await eventually(running, what="deployment running on the agent")
        await coordinator.restart()
        shown = await stack.finish(deployment, timeout=60)  # finish() scales it
        assert shown["deployment"]["status"] == "succeeded", shown
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert await stack.page(session) == (200, "v1")
        events = await stack.call("GET", f"/deployments/{deployment}/events")
        sequences = [e["event"]["sequence"] for e in events["envelopes"]]
        assert sequences == list(range(1, len(sequences) + 1))
    finally:
        await stack.agent.stop()


def _source_archive(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def test_cancel_during_a_slow_build_leaves_nothing_behind(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    stack = await _stack(coordinator, admin_token, caddy, tmp_path)
    try:
        first = await stack.deploy()
        assert (await stack.finish(first))["deployment"]["status"] == "succeeded"

        dockerfile = 'FROM berth-test/busybox:latest\nRUN sleep 8\nCMD ["true"]\n'
        status, uploaded, _ = await coordinator.call(
            "POST",
            f"/resources/{stack.resource_id}/source/archive",
            token=admin_token,
            data=_source_archive({"Dockerfile": dockerfile}),
            headers={"Content-Type": "application/gzip"},
        )
        assert status == 201, uploaded
        slow = await stack.deploy()

        async def building() -> bool:
            logs = await stack.call("GET", f"/deployments/{slow}/logs")
            return any(line["phase"] == "build" for line in logs["logs"])

        await eventually(building, what="the build to start")
        await stack.call("POST", f"/deployments/{slow}/cancel", {"confirm": slow})
        shown = await stack.finish(slow, timeout=15)
        assert shown["deployment"]["status"] == "canceled", shown

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert await stack.page(session) == (200, "v1")
        assert {
            c.labels["berth.deployment-id"]
            for c in _resource_containers(docker_client, stack.resource_id)
        } == {first}
        tag = f"berth/{stack.resource_id}:{slow}".lower()

        async def discarded() -> bool:
            return f"removed image {tag} of a canceled build" in stack.agent.log()

        # The engine finishes the abandoned build step; the agent then removes its image.
        await eventually(discarded, timeout=60, what=f"image {tag} removed")
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(tag)
    finally:
        await stack.agent.stop()
