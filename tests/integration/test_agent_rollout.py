"""Real Docker and a real Caddy: rollouts switch traffic with zero failed requests."""

import asyncio
import contextlib
import hashlib
import io
import json
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import docker
import docker.errors
import pytest
from aiohttp import web

from agent.artifacts import ArchiveBuilder
from agent.deployments import DeploymentManager
from agent.edge import CaddyEdge
from agent.edge_tls import EdgeTls
from agent.rollout import DeployLog, Rollout, RolloutResult
from agent.runtime.docker import DockerRuntime
from shared.errors import RuntimeFailed
from shared.messages import (
    ArchiveArtifact,
    DeployLogLine,
    DeployPlan,
    IdSequence,
    Inventory,
    ResourceProbe,
    RuntimeControl,
)
from shared.messages.deploy import DomainRoute
from tests.edge_proxy import Caddy, free_port
from tests.harness import TEST_LABEL, TEST_SESSION, eventually
from tests.integration.test_edge_held_routes import CountingEdge

pytestmark = pytest.mark.docker
TEST_IMAGE = "berth-test/busybox:latest"
HOST = "web.prod.demo.localhost"
RESOURCE_ID = f"res_{TEST_SESSION[-8:]}"


async def _edge_up(edge: CaddyEdge) -> None:
    """Wait for Caddy's admin API and put the edge's servers in place."""

    async def ready() -> bool:
        try:
            await edge.ensure_server()
        except Exception:
            return False
        return True

    await eventually(ready, timeout=15, what="caddy admin API")


@pytest.fixture
async def edge(caddy: Caddy) -> CaddyEdge:
    edge = CaddyEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}")
    await _edge_up(edge)
    return edge


@pytest.fixture
async def runtime(docker_client: docker.DockerClient) -> AsyncIterator[DockerRuntime]:
    runtime = DockerRuntime(extra_labels={TEST_LABEL: TEST_SESSION})
    yield runtime
    await runtime.close()


def _plan(deployment_id: str, command: str, **health: object) -> DeployPlan:
    return DeployPlan.model_validate(
        {
            "id": 1,
            "deploymentId": deployment_id,
            "organizationId": "org_1",
            "projectId": "prj_1",
            "environmentId": "env_1",
            "resourceId": RESOURCE_ID,
            "resourceSlug": "web",
            "artifact": {"kind": "image", "image": TEST_IMAGE},
            "container": {
                "command": command,
                "internalPort": 8080,
                "environment": {"GREETING": "hello", "API_KEY": "s3cr3t-value"},
                "secretKeys": ["API_KEY"],
                "stopGraceSeconds": 1,
                "drainSeconds": 1,
            },
            "health": {"intervalSeconds": 0.2, "timeoutSeconds": 1, "retries": 15, **health},
            "route": {"hostnames": [HOST]},
        }
    )


def _httpd(version: str, status_file: str = "index.html") -> str:
    return (
        f"mkdir -p /www && echo {version} > /www/{status_file} && "
        # PID 1 ignores SIGTERM unless it traps it: stop quickly, like a well-behaved app.
        "echo using $API_KEY && httpd -f -p 8080 -h /www & trap 'kill $!; exit 0' TERM; wait"
    )


async def _deploy(
    runtime: DockerRuntime, edge: CaddyEdge, plan: DeployPlan
) -> tuple[RolloutResult, list[DeployLogLine]]:
    lines: list[DeployLogLine] = []
    log = DeployLog(lines.append, [plan.container.environment["API_KEY"]])
    result = await Rollout(plan, runtime, edge, log).run()
    return result, lines


async def _fetch(session: aiohttp.ClientSession, caddy: Caddy) -> tuple[int, str]:
    async with session.get(
        f"http://127.0.0.1:{caddy.http_port}/", headers={"Host": HOST}
    ) as response:
        return response.status, (await response.text()).strip()


async def test_rollout_switches_traffic_without_failed_requests(
    runtime: DockerRuntime,
    edge: CaddyEdge,
    caddy: Caddy,
    docker_client: docker.DockerClient,
) -> None:
    first, lines = await _deploy(runtime, edge, _plan("dep_V1", _httpd("v1")))
    assert first.outcome == "succeeded", [line.message for line in lines]
    assert [c.name for c in await runtime.list_managed(_plan("x", "").resource_id)] == [
        "berth-web-dep_v1-1"
    ]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        assert await _fetch(session, caddy) == (200, "v1")

        failures: list[str] = []
        seen: list[str] = []
        stop = asyncio.Event()

        async def poll() -> None:
            # ~20 requests per second for the whole redeploy.
            while not stop.is_set():
                try:
                    status, body = await _fetch(session, caddy)
                    seen.append(body)
                    # Caddy answers an unmatched host with an empty 200: check the body too.
                    if status != 200 or body not in ("v1", "v2"):
                        failures.append(f"HTTP {status}: {body!r}")
                except aiohttp.ClientError as exc:
                    failures.append(repr(exc))
                await asyncio.sleep(0.05)  # the load's pace, not a wait

        poller = asyncio.create_task(poll())
        try:
            second, lines = await _deploy(runtime, edge, _plan("dep_V2", _httpd("v2")))
            await eventually(lambda: _async(len(seen) > 0 and seen[-1] == "v2"), what="v2")
        finally:
            stop.set()
            await poller
    assert second.outcome == "succeeded", [line.message for line in lines]
    assert failures == []
    # The poller really ran through the switch (a handful of requests would prove nothing).
    assert len(seen) >= 20
    assert "v1" in seen
    assert "v2" in seen
    assert seen.index("v2") > seen.index("v1")
    # Only v2's container is left, and it carries the test session label.
    remaining = docker_client.containers.list(all=True, filters={"label": _ours()})
    assert [c.name for c in remaining] == ["berth-web-dep_v2-1"]
    events = [line.event for line in lines if line.event]
    assert events.index("health-passed") < events.index("traffic-switched")
    assert events.index("traffic-switched") < events.index("old-removed")


def _ours() -> list[str]:
    """Labels of this module's containers (other modules' share the session label)."""
    return [f"{TEST_LABEL}={TEST_SESSION}", f"berth.resource-id={RESOURCE_ID}"]


async def _async(value: bool) -> bool:
    return value


async def test_failing_candidate_is_removed_and_old_keeps_serving(
    runtime: DockerRuntime,
    edge: CaddyEdge,
    caddy: Caddy,
    docker_client: docker.DockerClient,
) -> None:
    first, _ = await _deploy(runtime, edge, _plan("dep_Good", _httpd("good")))
    assert first.outcome == "succeeded"
    # The candidate serves 404 on /: its health check never passes.
    started = time.monotonic()
    bad, lines = await _deploy(
        runtime, edge, _plan("dep_Bad", _httpd("bad", "other.html"), retries=3)
    )
    assert time.monotonic() - started < 30
    assert bad.outcome == "failed"
    assert bad.error is not None
    assert bad.error.message == "health check failed after 3 attempts: HTTP 404 from /"
    events = [line.event for line in lines if line.event]
    assert "traffic-switched" not in events
    assert "candidate-removed" in events
    # Secrets never reach a log line.
    assert all("s3cr3t-value" not in line.message for line in lines)
    remaining = docker_client.containers.list(all=True, filters={"label": _ours()})
    assert [c.name for c in remaining] == ["berth-web-dep_good-1"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        assert await _fetch(session, caddy) == (200, "good")
    with contextlib.suppress(Exception):
        await edge.remove_route(_plan("x", "").resource_id)


async def test_manager_restores_routes_after_caddy_and_agent_restart(
    runtime: DockerRuntime,
    edge: CaddyEdge,
    caddy: Caddy,
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "state"
    manager = DeploymentManager(runtime, edge, state_dir)
    task = asyncio.create_task(manager.run())
    try:
        await manager.wait_ready()
        assert await manager.accept(_plan("dep_Keep", _httpd("kept"))) == (False, None)

        async def finished() -> bool:
            path = state_dir / "deployments" / "dep_Keep.json"
            return bool(json.loads(path.read_text())["state"] == "finished")

        await eventually(finished, timeout=30, what="deployment finished")
        sent: list[object] = []

        async def send(message: object) -> None:
            sent.append(message)

        await manager.attach(send, IdSequence())
        [inventory] = [m for m in sent if isinstance(m, Inventory)]
        mine = [c for c in inventory.containers if c.deployment_id == "dep_Keep"]
        assert [(c.state, c.serving) for c in mine] == [("running", True)]

        probe = await manager.probe(
            ResourceProbe(id=2, resource_id=mine[0].resource_id, health_path="/"), IdSequence()
        )
        assert [(c.name, c.status, c.message, c.status_code) for c in probe.checks] == [
            ("runtime", "passed", "1 of 1 container(s) running", None),
            ("health", "passed", "HTTP 200 from /", 200),
        ]
        # A restart gets a new host port from Docker; the route follows it.
        control = await manager.control(
            RuntimeControl(id=3, resource_id=mine[0].resource_id, operation="restart"),
            IdSequence(),
        )
        assert control.status == "succeeded", control.error
        [after] = control.containers
        assert after.serving is True
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

            async def serves() -> bool:
                return await _fetch(session, caddy) == (200, "kept")

            await eventually(serves, what="served after restart")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # Caddy restarts with an empty config (no berth server, no routes).
    caddy.stop()
    caddy.start()
    restarted = CaddyEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}")

    async def admin_up() -> bool:
        try:
            return await restarted.current_upstreams("none") is None
        except Exception:
            return False

    await eventually(admin_up, timeout=15, what="caddy restarted")
    # A fresh agent process puts the route back from the containers' labels.
    manager = DeploymentManager(runtime, restarted, state_dir)
    task = asyncio.create_task(manager.run())
    try:
        await manager.wait_ready()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert await _fetch(session, caddy) == (200, "kept")
        assert await manager.accept(_plan("dep_Keep", _httpd("again"))) == (True, "succeeded")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_restarted_agent_relearns_which_binding_each_https_name_is_without_writing(
    runtime: DockerRuntime, caddy: Caddy, tmp_path: Path
) -> None:
    """Caddy holds an HTTPS host route's names, not their bindings: an agent that restarts
    learns them again from its containers' labels, and writes nothing to Caddy for it."""
    # Nothing listens at this directory: the name's order fails, which is not under test.
    tls = EdgeTls(f"127.0.0.1:{free_port()}", directory="https://127.0.0.1:9/directory")
    name = f"shop-{TEST_SESSION[-8:]}.example.test"

    async def started(
        edge: CountingEdge, state_dir: Path
    ) -> tuple[DeploymentManager, asyncio.Task[None]]:
        await _edge_up(edge)
        manager = DeploymentManager(runtime, edge, state_dir)
        task = asyncio.create_task(manager.run())
        await manager.wait_ready()
        return manager, task

    async def stopped(task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    state_dir = tmp_path / "state"
    first = CountingEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}", tls)
    manager, task = await started(first, state_dir)
    try:
        plan = _plan("dep_Tls", _httpd("tls"))
        assert plan.route is not None
        domains = [DomainRoute(id="dbd_shop", domain_name=name)]
        plan = plan.model_copy(update={"route": plan.route.model_copy(update={"domains": domains})})
        assert await manager.accept(plan) == (False, None)

        async def finished() -> bool:
            path = state_dir / "deployments" / "dep_Tls.json"
            return bool(json.loads(path.read_text())["state"] == "finished")

        await eventually(finished, timeout=30, what="deployment finished")
        assert first.host_binding(name) == (RESOURCE_ID, "dbd_shop")
    finally:
        await stopped(task)
        await first.close()

    restarted = CountingEdge(caddy.admin_url, f"127.0.0.1:{caddy.http_port}", tls)
    manager, task = await started(restarted, state_dir)
    try:
        assert restarted.host_binding(name) == (RESOURCE_ID, "dbd_shop")
        assert restarted.bindings_known(RESOURCE_ID)
        assert [(m, p) for m, p in restarted.calls if m != "GET"] == []
    finally:
        await stopped(task)
        await restarted.close()


def _source_archive(directory: Path, files: dict[str, str]) -> bytes:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "source.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.read_bytes()


async def test_archive_is_built_with_docker_and_served(
    runtime: DockerRuntime,
    edge: CaddyEdge,
    caddy: Caddy,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    tag = f"berth-test/built:{TEST_SESSION}"
    archives = {
        "good": _source_archive(
            tmp_path / "good",
            {
                "Dockerfile": f"FROM {TEST_IMAGE}\nCOPY index.html /www/index.html\n"
                'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n',
                "index.html": "built\n",
            },
        ),
        "bad": _source_archive(
            tmp_path / "bad", {"Dockerfile": f"FROM {TEST_IMAGE}\nRUN echo failing; exit 3\n"}
        ),
    }

    async def download(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer tok-1":
            return web.Response(status=401)
        return web.Response(body=archives[request.match_info["name"]])

    app = web.Application()
    app.router.add_get("/agent/v1/archives/{name}", download)
    server = web.AppRunner(app)
    await server.setup()
    await web.TCPSite(server, "127.0.0.1", 0).start()
    port = server.addresses[0][1]
    builder = ArchiveBuilder(runtime, tmp_path / "state", f"http://127.0.0.1:{port}", None)

    def plan(deployment_id: str, name: str) -> DeployPlan:
        base = _plan(deployment_id, "unused")
        return base.model_copy(
            update={
                "artifact": ArchiveArtifact(
                    archive_id=name,
                    sha256=hashlib.sha256(archives[name]).hexdigest(),
                    size_bytes=len(archives[name]),
                    download_path=f"/agent/v1/archives/{name}",
                    download_token="tok-1",
                    image=tag,
                ),
                "container": base.container.model_copy(update={"command": None}),
            }
        )

    try:
        lines: list[DeployLogLine] = []
        result = await Rollout(
            plan("dep_Built", "good"), runtime, edge, DeployLog(lines.append, []), builder
        ).run()
        assert result.outcome == "succeeded", [line.message for line in lines]
        assert any(line.phase == "build" and line.stream == "stdout" for line in lines)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert await _fetch(session, caddy) == (200, "built")

        lines.clear()
        failed = await Rollout(
            plan("dep_Broken", "bad"), runtime, edge, DeployLog(lines.append, []), builder
        ).run()
        assert failed.outcome == "failed"
        assert failed.error is not None
        assert "returned a non-zero code: 3" in failed.error.message
        assert list((tmp_path / "state" / "workspaces").iterdir()) == []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert await _fetch(session, caddy) == (200, "built")
    finally:
        await server.cleanup()
        for container in docker_client.containers.list(
            all=True, filters={"label": f"{TEST_LABEL}={TEST_SESSION}"}
        ):
            container.remove(force=True)
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag, force=True)
        docker_client.images.prune(filters={"label": f"{TEST_LABEL}={TEST_SESSION}"})


async def test_edge_refuses_clearly_when_another_caddy_server_holds_the_address(
    edge: CaddyEdge,
) -> None:
    # Rename the berth server, so a foreign server (like a Caddyfile's srv0) holds the address.
    config = await edge._call("GET", "/config/apps/http/servers/berth")
    await edge._call("DELETE", "/config/apps/http/servers/berth")
    await edge._call("POST", "/config/apps/http/servers/srv0", config)
    with pytest.raises(RuntimeFailed, match="'srv0' already listens on"):
        await edge.ensure_server()
