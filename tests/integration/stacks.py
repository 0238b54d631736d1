"""A real agent with a deployed resource (no edge proxy), for tests of logs, terminals and usage,
and the set-up steps other integration stacks share (agent, workspace, Docker clean-up)."""

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import docker
import docker.errors

from tests.harness import TEST_LABEL, TEST_SESSION, AgentProcess, Coordinator, eventually

TERMINAL_STATUSES = {"succeeded", "failed", "canceled", "rolled-back"}


@dataclass
class Workload:
    """A server with a running agent, and one resource of one project/environment on it."""

    coordinator: Coordinator
    token: str
    agent: AgentProcess
    server_id: str
    project_id: str = ""
    environment_id: str = ""
    resource_id: str = ""
    deployments: list[str] = field(default_factory=list)

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """Call the API as the admin (query in ``path``); fail the test on a non-2xx answer."""
        status, answer, _ = await self.coordinator.call(method, path, token=self.token, json=body)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer

    async def configure(self, path: str, body: dict[str, Any]) -> None:
        """POST to one of the resource's configuration routes."""
        await self.call("POST", f"/resources/{self.resource_id}/{path}", body)

    async def deploy(self, timeout: float = 90) -> str:
        """Deploy the resource and wait until it succeeded; return the deployment id."""
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
        return await self.succeeded(str(answer["id"]), timeout)

    async def succeeded(self, deployment_id: str, timeout: float = 90) -> str:
        """Wait until deployment ``deployment_id`` ended and assert it succeeded; return its id."""

        async def finished() -> bool:
            shown = await self.call("GET", f"/deployments/{deployment_id}")
            return shown["deployment"]["status"] in TERMINAL_STATUSES

        await eventually(finished, timeout=timeout, what=f"deployment {deployment_id} to end")
        shown = await self.call("GET", f"/deployments/{deployment_id}")
        assert shown["deployment"]["status"] == "succeeded", shown
        self.deployments.append(deployment_id)
        return deployment_id

    async def use_image(self, image: str) -> None:
        """Run the resource from ``image`` (``repository:tag``) instead of the busybox one."""
        repository, tag = image.rsplit(":", 1)
        await self.configure(
            "source",
            {"source": {"kind": "docker-image", "imageName": repository, "imageTag": tag}},
        )

    async def provision(self, kind: str, name: str, **extra: Any) -> str:
        """Provision a dependency resource of ``kind`` on this stack's server; its id."""
        created = await self.call(
            "POST",
            "/dependency-resources/provision",
            {
                "kind": kind,
                "projectId": self.project_id,
                "environmentId": self.environment_id,
                "name": name,
                "serverId": self.server_id,
                **extra,
            },
        )
        return str(created["id"])

    async def dependency_ready(self, dependency_id: str) -> dict[str, Any]:
        """Wait until the dependency resource is ready (fail at once if it failed); show it."""

        async def ready() -> bool:
            shown = await self.call("GET", f"/dependency-resources/{dependency_id}")
            status = shown["dependencyResource"]["lifecycleStatus"]
            assert status != "failed", shown
            return bool(status == "ready")

        await eventually(ready, timeout=120, what="the database to be ready")
        shown = await self.call("GET", f"/dependency-resources/{dependency_id}")
        return dict(shown["dependencyResource"])

    async def bind(self, dependency_id: str, target_name: str) -> None:
        """Bind the dependency resource to the resource as variable ``target_name``."""
        await self.call(
            "POST",
            f"/resources/{self.resource_id}/dependency-bindings",
            {"dependencyResourceId": dependency_id, "targetName": target_name},
        )

    def containers(self, client: docker.DockerClient, *, all: bool = False) -> list[Any]:
        """The resource's containers as Docker sees them."""
        return list(
            client.containers.list(
                all=all, filters={"label": f"berth.resource-id={self.resource_id}"}
            )
        )


async def start_agent(
    coordinator: Coordinator,
    token: str,
    state_dir: Path,
    *,
    name: str = "node-1",
    env: dict[str, str] | None = None,
    server_extra: dict[str, Any] | None = None,
) -> tuple[AgentProcess, str]:
    """Add a server (with ``server_extra`` fields), enroll and start a real agent for it, wait
    until it is online."""
    server = await coordinator.add_server(token, name, **(server_extra or {}))
    agent = AgentProcess(state_dir, env=env)
    code, out = await agent.enroll(coordinator.url, server["joinToken"])
    assert code == 0, out
    await agent.start()

    async def online() -> bool:
        return await coordinator.agent_status(token, server["id"]) == "online"

    await eventually(online, what="agent online")
    return agent, str(server["id"])


class ResourceStack(Protocol):
    """A stack that calls the API and keeps the ids of the resource it made."""

    project_id: str
    environment_id: str
    resource_id: str

    async def call(self, method: str, path: str, body: Any = None) -> Any: ...

    async def configure(self, path: str, body: dict[str, Any]) -> None: ...


async def busybox_resource(stack: ResourceStack, name: str) -> None:
    """Create project ``shop``, its environment ``production`` and resource ``name`` in it,
    sourced from the local busybox test image; the ids are set on ``stack``."""
    stack.project_id = (await stack.call("POST", "/projects", {"name": "shop"}))["id"]
    stack.environment_id = (
        await stack.call(
            "POST", "/environments", {"projectId": stack.project_id, "name": "production"}
        )
    )["id"]
    stack.resource_id = (
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
    await stack.configure(
        "source",
        {
            "source": {
                "kind": "docker-image",
                "imageName": "berth-test/busybox",
                "imageTag": "latest",
            }
        },
    )


def dependency_images(images: dict[str, str]) -> dict[str, str]:
    """Coordinator settings that run each dependency kind of ``images`` (``db_images(...)``)
    from its locally built image."""
    return {f"dependency_image_{kind}": image for kind, image in images.items()}


def remove_session_objects(client: docker.DockerClient) -> None:
    """Remove the containers, networks and volumes this test session labelled (dependency
    resources make all three); one an agent is removing already counts as gone."""
    selector: dict[str, str | list[str] | bool] = {"label": f"{TEST_LABEL}={TEST_SESSION}"}
    for container in client.containers.list(all=True, filters=selector):
        try:
            container.remove(force=True)
        except docker.errors.APIError as exc:
            # Gone already (404) or its removal in progress (409): nothing is left behind.
            if exc.status_code not in (404, 409):
                raise
    for network in client.networks.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    for volume in client.volumes.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)


async def workload(
    coordinator: Coordinator,
    token: str,
    state_dir: Path,
    start_command: str,
    *,
    secrets: dict[str, str] | None = None,
    agent_env: dict[str, str] | None = None,
    resource_name: str = "app",
    health_check: bool = False,
) -> Workload:
    """A started agent plus a configured (not yet deployed) resource running ``start_command``
    in the local busybox test image, without network exposure; without health check unless
    ``health_check`` (then the default HTTP check on port 8080 must pass)."""
    agent, server_id = await start_agent(coordinator, token, state_dir, env=agent_env)
    stack = Workload(coordinator, token, agent, server_id)
    await busybox_resource(stack, resource_name)
    await stack.configure(
        "network-profile", {"networkProfile": {"internalPort": 8080, "exposureMode": "none"}}
    )
    await stack.configure("runtime-profile", {"runtimeProfile": {"startCommand": start_command}})
    if not health_check:
        # Nothing listens in these workloads: the container counts as started once it runs.
        await stack.configure("health-policy", {"healthCheck": {"enabled": False}})
    for key, value in (secrets or {}).items():
        await stack.configure("secrets", {"key": key, "value": value})
    return stack


async def deployed_workload(
    coordinator: Coordinator,
    token: str,
    state_dir: Path,
    start_command: str,
    *,
    secrets: dict[str, str] | None = None,
    agent_env: dict[str, str] | None = None,
) -> Workload:
    """``workload(...)`` deployed once; the agent is stopped if any of it fails (the caller's
    cleanup only starts once this returns)."""
    stack = await workload(
        coordinator, token, state_dir, start_command, secrets=secrets, agent_env=agent_env
    )
    try:
        await stack.deploy()
    except BaseException:
        await stack.agent.stop()
        raise
    return stack
