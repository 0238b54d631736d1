"""End to end: the edge follows containers changed outside a deployment (Docker events)."""

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from tests.edge_proxy import Caddy
from tests.harness import Coordinator, eventually
from tests.integration.test_deploy_e2e import Stack, _stack

pytestmark = pytest.mark.docker

# Well below the agent's slow periodic route check (30 s): only the engine's events can make
# these deadlines.
PROMPTLY = 10.0


async def _page(session: aiohttp.ClientSession, stack: Stack, host: str) -> tuple[int, str]:
    async with session.get(
        f"http://127.0.0.1:{stack.caddy.http_port}/", headers={"Host": host}
    ) as response:
        return response.status, (await response.text()).strip()


API_COMMAND = (
    "mkdir -p /www && echo api > /www/index.html && "
    "httpd -f -p 8080 -h /www & trap 'kill $!; exit 0' TERM; wait"
)


async def second_resource(
    stack: Stack, name: str = "api", command: str = API_COMMAND
) -> tuple[str, str]:
    """Another resource of the stack's environment running ``command`` (default: serving
    "api" on 8080) without a health check; its id and host name."""
    resource_id = (
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
    base = f"/resources/{resource_id}"
    await stack.call(
        "POST",
        f"{base}/source",
        {
            "source": {
                "kind": "docker-image",
                "imageName": "berth-test/busybox",
                "imageTag": "latest",
            }
        },
    )
    await stack.call(
        "POST",
        f"{base}/network-profile",
        {"networkProfile": {"internalPort": 8080, "exposureMode": "reverse-proxy"}},
    )
    await stack.call(
        "POST", f"{base}/runtime-profile", {"runtimeProfile": {"startCommand": command}}
    )
    await stack.call("POST", f"{base}/health-policy", {"healthCheck": {"enabled": False}})
    answer = await stack.call(
        "POST",
        "/deployments",
        {
            "projectId": stack.project_id,
            "environmentId": stack.environment_id,
            "resourceId": resource_id,
            "serverId": stack.server_id,
        },
    )
    shown = await stack.finish(str(answer["id"]))
    assert shown["deployment"]["status"] == "succeeded", shown
    return str(resource_id), f"{name}.production.shop.localhost"


def _only_container(client: docker.DockerClient, resource_id: str) -> Any:
    [container] = client.containers.list(
        all=True, filters={"label": f"berth.resource-id={resource_id}"}
    )
    return container


async def test_stopped_and_restarted_containers_move_their_route_promptly_without_dropping_others(
    coordinator: Coordinator,
    admin_token: str,
    caddy: Caddy,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    stack = await _stack(coordinator, admin_token, caddy, tmp_path)
    try:
        shown = await stack.finish(await stack.deploy())
        assert shown["deployment"]["status"] == "succeeded", shown
        api_id, api_host = await second_resource(stack)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert await _page(session, stack, api_host) == (200, "api")
            api = _only_container(docker_client, api_id)

            # Load on the other resource for the whole time its neighbour's route changes.
            failures: list[str] = []
            served = 0
            stop = asyncio.Event()

            retried = 0

            async def load() -> None:
                nonlocal served, retried
                while not stop.is_set():
                    try:
                        answer = await _page(session, stack, stack.hostname)
                    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                        # Caddy closes idle keep-alive connections when its config changes; a
                        # request racing that close is retried once, as browsers do for
                        # idempotent requests (RFC 9110, 9.2.2). A second failure counts.
                        retried += 1
                        try:
                            answer = await _page(session, stack, stack.hostname)
                        except (aiohttp.ClientError, TimeoutError) as exc:
                            failures.append(repr(exc))
                            continue
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        failures.append(repr(exc))
                        continue
                    if answer != (200, "v1"):
                        failures.append(repr(answer))
                    served += 1
                    await asyncio.sleep(0.01)  # the load's pace, not a wait

            loader = asyncio.create_task(load())
            try:
                for _ in range(3):
                    # Stopped outside any deployment: the route answers 503, promptly.
                    await asyncio.to_thread(api.stop, timeout=2)

                    async def stopped() -> bool:
                        return (await _page(session, stack, api_host))[0] == 503

                    await eventually(stopped, timeout=PROMPTLY, what="503 for the stopped api")

                    # Started again: Docker publishes a new host port; the route follows it.
                    await asyncio.to_thread(api.start)

                    async def serving() -> bool:
                        return await _page(session, stack, api_host) == (200, "api")

                    await eventually(serving, timeout=PROMPTLY, what="api served again")
            finally:
                stop.set()
                await loader
            assert served > 20, served
            assert failures == [], failures[:5]
            assert retried <= 6, retried  # at most one per change

            # Removed outside a deployment: the route goes too (Caddy's own 404, no route).
            await asyncio.to_thread(api.remove, force=True)

            async def gone() -> bool:
                async with session.get(
                    f"{caddy.admin_url}/id/berth-{api_id}", headers={"Origin": caddy.admin_url}
                ) as response:
                    return response.status == 404

            await eventually(gone, timeout=PROMPTLY, what="the removed api's route to go")
            assert await _page(session, stack, stack.hostname) == (200, "v1")
    finally:
        await stack.agent.stop()
