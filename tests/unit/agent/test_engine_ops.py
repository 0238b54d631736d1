"""Run and lifecycle calls on the socket: the SDK's requests, errors and messages."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from agent.runtime import RunSpec
from agent.runtime.docker import DockerRuntime
from shared.errors import RuntimeFailed
from tests.unit.agent.fake_engine import (
    CID,
    IMAGE_ID,
    FakeEngine,
    Seen,
    Stream,
    container_routes,
    inspect,
)

ROOT = Path(__file__).resolve().parents[3]


def sdk_client(engine: FakeEngine) -> docker.DockerClient:
    return docker.DockerClient(base_url=f"unix://{engine.server_address}", timeout=5)


SPECS = [
    RunSpec(name="web-1", image="busybox", labels={"berth.managed": "true"}),
    RunSpec(
        name="web-2",
        image="registry.example:5000/shop/web:v2",
        command="exec httpd -f -p 8080",
        environment={"GREETING": "hi", "EQ": "a=b", "EMPTY": ""},
        labels={"berth.managed": "true", "berth.replica": "2"},
        cpus=0.5,
        memory_bytes=64 * 1024 * 1024,
        ports=(9000, 8080),
    ),
]


@pytest.mark.parametrize("spec", SPECS, ids=["minimal", "every-option"])
async def test_run_sends_the_sdks_create_body(engine: FakeEngine, spec: RunSpec) -> None:
    container_routes(engine)
    bound = {f"{p}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(40000 + p)}] for p in spec.ports}
    engine.routes[("GET", f"/containers/{CID}/json")] = (
        200,
        {"Id": CID, "State": {"Status": "running"}, "NetworkSettings": {"Ports": bound}},
    )
    extra = {"berth.test": "unit"}
    runtime = DockerRuntime(extra_labels=extra)
    try:
        started = await runtime.run(spec)
    finally:
        await runtime.close()
    assert started.container_id == CID
    assert started.host_ports == {p: 40000 + p for p in spec.ports}
    [ours] = engine.requests_to("POST", "/containers/create")
    assert not ours.sdk
    assert engine.requests_to("POST", f"/containers/{CID}/start")

    # The same call through the SDK, as the agent made it before.
    engine.seen.clear()
    client = sdk_client(engine)
    kwargs: dict[str, Any] = {
        "name": spec.name,
        "detach": True,
        "environment": dict(spec.environment),
        "labels": {**spec.labels, **extra},
        "ports": {f"{port}/tcp": ("127.0.0.1", None) for port in spec.ports},
        "restart_policy": {"Name": "unless-stopped"},
    }
    if spec.command is not None:
        kwargs["entrypoint"] = ["/bin/sh", "-c"]
        kwargs["command"] = [spec.command]
    if spec.cpus is not None:
        kwargs["nano_cpus"] = int(spec.cpus * 1_000_000_000)
    if spec.memory_bytes is not None:
        kwargs["mem_limit"] = spec.memory_bytes
    client.containers.run(spec.image, **kwargs)
    client.close()
    [theirs] = engine.requests_to("POST", "/containers/create")
    assert theirs.sdk
    assert json.loads(ours.body) == json.loads(theirs.body)
    assert ours.query == theirs.query == {"name": [spec.name]}
    assert ours.headers["content-type"] == theirs.headers["content-type"]


async def test_run_without_a_host_port_fails_naming_the_container(engine: FakeEngine) -> None:
    container_routes(engine)
    engine.routes[("GET", f"/containers/{CID}/json")] = (200, inspect("exited", port=None))
    runtime = DockerRuntime(extra_labels={})
    with pytest.raises(
        RuntimeFailed, match=r"no host port for \[8080\] \(state exited\)"
    ) as caught:
        await runtime.run(RunSpec(name="web-1", image="busybox", ports=(8080,)))
    assert caught.value.details == {"containerId": CID}


async def test_run_pulls_a_missing_image_then_creates_again(engine: FakeEngine) -> None:
    container_routes(engine)
    creates: list[Seen] = []

    def create(seen: Seen) -> tuple[int, Any]:
        creates.append(seen)
        if len(creates) == 1:
            return 404, {"message": "No such image: busybox:latest"}
        return 201, {"Id": CID, "Warnings": []}

    engine.routes[("POST", "/containers/create")] = create
    engine.routes[("POST", "/images/create")] = (200, Stream([{"status": "Pulled"}]))
    engine.routes[("GET", "/images/busybox:latest/json")] = (200, {"Id": IMAGE_ID})
    runtime = DockerRuntime(extra_labels={})
    started = await runtime.run(RunSpec(name="web-1", image="busybox:latest"))
    assert started.container_id == CID
    assert len(creates) == 2
    [pull] = engine.requests_to("POST", "/images/create")
    assert pull.query == {"tag": ["latest"], "fromImage": ["busybox"]}


async def test_run_refused_is_the_same_failure(engine: FakeEngine) -> None:
    engine.routes[("POST", "/containers/create")] = (
        409,
        {"message": 'Conflict. The container name "/web-1" is already in use'},
    )
    runtime = DockerRuntime(extra_labels={})
    with pytest.raises(RuntimeFailed) as caught:
        await runtime.run(RunSpec(name="web-1", image="busybox"))
    assert str(caught.value).startswith(
        "cannot start container web-1: 409 Client Error for "
        "http+docker://localhost/v1.41/containers/create?name=web-1: Conflict"
    )
    assert "already in use" in str(caught.value)


@pytest.mark.parametrize(
    ("action", "method", "path", "query"),
    [
        ("stop", "POST", f"/containers/{CID}/stop", {"t": ["3"]}),
        ("start", "POST", f"/containers/{CID}/start", {}),
        ("restart", "POST", f"/containers/{CID}/restart", {"t": ["3"]}),
        ("remove", "DELETE", f"/containers/{CID}", {"v": ["0"], "link": ["0"], "force": ["1"]}),
    ],
)
async def test_lifecycle_calls(
    engine: FakeEngine, action: str, method: str, path: str, query: dict[str, list[str]]
) -> None:
    engine.routes[(method, path)] = (204, None)
    runtime = DockerRuntime(extra_labels={})
    call = getattr(runtime, action)
    await (call(CID, 2.5) if action in ("stop", "restart") else call(CID))
    [seen] = [s for s in engine.seen if s.path == path]
    assert (seen.method, seen.query) == (method, query)

    # Missing: fine to stop or remove, an error to start or restart.
    engine.routes[(method, path)] = (404, {"message": f"No such container: {CID}"})
    if action in ("stop", "remove"):
        await (call(CID, 1) if action == "stop" else call(CID))
    else:
        with pytest.raises(RuntimeFailed, match=f"^container {CID} does not exist$"):
            await (call(CID, 1) if action == "restart" else call(CID))
    engine.routes[(method, path)] = (500, {"message": "engine trouble"})
    with pytest.raises(RuntimeFailed, match=f"^cannot {action} container {CID}: 500 .*trouble"):
        await (call(CID, 1) if action in ("stop", "restart") else call(CID))


async def test_stopped_or_started_already_is_not_an_error(engine: FakeEngine) -> None:
    engine.routes[("POST", f"/containers/{CID}/stop")] = (304, None)
    engine.routes[("POST", f"/containers/{CID}/start")] = (304, None)
    runtime = DockerRuntime(extra_labels={})
    await runtime.stop(CID, 1)
    await runtime.start(CID)


def test_a_deployment_never_loads_the_docker_sdk() -> None:
    # Run, pull, build, stop and remove through the runtime in a fresh interpreter against the
    # fake engine: requests, urllib3 and the SDK stay out of the process (bench/agent_cost.py).
    probe = """
import asyncio, os, sys, tempfile
from pathlib import Path
from tests.unit.agent.fake_engine import Stream, serve
directory = tempfile.mkdtemp(prefix="berth-probe-", dir="/tmp")
engine, _ = serve(os.path.join(directory, "docker.sock"))
os.environ["DOCKER_HOST"] = f"unix://{engine.server_address}"
os.environ["DOCKER_CONFIG"] = directory
cid = "c" * 64
engine.routes[("GET", "/images/busybox:latest/json")] = (200, {"Id": "sha256:1"})
engine.routes[("POST", "/images/create")] = (200, Stream([{"status": "ok"}]))
engine.routes[("POST", "/build")] = (200, Stream([{"stream": "ok"}]))
engine.routes[("POST", "/containers/create")] = (201, {"Id": cid})
engine.routes[("POST", f"/containers/{cid}/start")] = (204, None)
engine.routes[("POST", f"/containers/{cid}/stop")] = (204, None)
engine.routes[("DELETE", f"/containers/{cid}")] = (204, None)
engine.routes[("GET", f"/containers/{cid}/json")] = (200, {"Id": cid})
from agent.runtime import RunSpec
from agent.runtime.docker import DockerRuntime
async def main():
    runtime = DockerRuntime(extra_labels={})
    await runtime.pull("busybox")
    context = Path(directory) / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox")
    await runtime.build(context, "Dockerfile", None, "busybox:latest", print)
    started = await runtime.run(RunSpec(name="web-1", image="busybox"))
    await runtime.stop(started.container_id, 1)
    await runtime.remove(started.container_id)
    await runtime.close()
asyncio.run(main())
heavy = ("docker", "requests", "urllib3", "charset_normalizer")
print(sorted(m for m in heavy if m in sys.modules))
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
