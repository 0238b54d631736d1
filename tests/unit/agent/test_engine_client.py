"""The SDK-free engine client against a fake engine on a unix socket, and the runtime using it."""

import asyncio
import http.server
import json
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from agent.monitoring.engine import DockerEngine
from agent.runtime import EngineError, RuntimeUnavailable
from agent.runtime.docker import DockerRuntime
from agent.runtime.engine import DEFAULT_SOCKET, EngineClient, local_socket
from agent.runtime.engine_ops import EngineOperations
from shared.errors import RuntimeFailed

ROOT = Path(__file__).resolve().parents[3]
CID = "c" * 64


class FakeEngine(socketserver.UnixStreamServer):
    """Answers ``(method, path)`` from ``routes``; records every request line."""

    def __init__(self, path: str) -> None:
        super().__init__(path, _Handler)
        self.api_version = "1.41"
        self.routes: dict[tuple[str, str], tuple[int, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.chunked = False


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeEngine

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet (and a unix peer has no address to print)."""

    def _answer(self) -> None:
        self.server.requests.append((self.command, self.path))
        path = urlsplit(self.path).path
        status: int
        body: Any
        if (self.command, path) == ("GET", "/version"):
            status, body = 200, {"ApiVersion": self.server.api_version}
        else:
            prefix = f"/v{self.server.api_version}"
            status, body = self.server.routes.get(
                (self.command, path.removeprefix(prefix)),
                (404, {"message": f"page not found: {path}"}),
            )
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if self.server.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(data), 7):
                piece = data[start : start + 7]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    do_GET = do_DELETE = _answer  # noqa: N815


@pytest.fixture
def socket_dir() -> Iterator[str]:
    # Unix socket paths are limited to 108 bytes: pytest's tmp_path can be longer.
    directory = tempfile.mkdtemp(prefix="berth-eng-", dir="/tmp")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def engine(socket_dir: str) -> Iterator[FakeEngine]:
    server = FakeEngine(os.path.join(socket_dir, "docker.sock"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
async def client(engine: FakeEngine) -> AsyncIterator[EngineOperations]:
    engine_client = EngineClient(str(engine.server_address), timeout=5)
    operations = EngineOperations(engine_client, lambda: pytest.fail("no SDK here"), {})
    yield operations
    await operations.close()


def query(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query)


def test_local_socket_reads_docker_host_as_the_sdk_does() -> None:
    assert local_socket("") == DEFAULT_SOCKET
    assert local_socket("unix:///run/user/1000/docker.sock") == "/run/user/1000/docker.sock"
    # Reached some other way: the SDK serves these.
    assert local_socket("tcp://10.0.0.2:2376") is None
    assert local_socket("ssh://admin@host") is None
    assert local_socket("unix://relative.sock") is None


async def test_calls_use_the_engines_api_version_asked_once(
    engine: FakeEngine, client: EngineOperations
) -> None:
    engine.routes[("GET", "/info")] = (200, {"DockerRootDir": "/srv/docker"})
    assert (await client.info())["DockerRootDir"] == "/srv/docker"
    assert (await client.info())["DockerRootDir"] == "/srv/docker"
    assert [p for _, p in engine.requests] == ["/version", "/v1.41/info", "/v1.41/info"]


async def test_container_list_asks_what_the_sdk_asks(
    engine: FakeEngine, client: EngineOperations
) -> None:
    engine.routes[("GET", "/containers/json")] = (200, [{"Id": CID}])
    found = await client.containers(all=True, filters_={"label": ["berth.managed=true"]})
    assert found == [{"Id": CID}]
    assert query(engine.requests[-1][1]) == {
        "limit": ["-1"],
        "all": ["1"],
        "size": ["0"],
        "trunc_cmd": ["0"],
        "filters": ['{"label": ["berth.managed=true"]}'],
    }
    await client.containers(size=True)
    assert query(engine.requests[-1][1]) == {
        "limit": ["-1"],
        "all": ["0"],
        "size": ["1"],
        "trunc_cmd": ["0"],
    }


async def test_chunked_answers_are_read_whole(engine: FakeEngine, client: EngineOperations) -> None:
    engine.chunked = True
    layers = {"LayersSize": 123, "Images": [{"Id": f"sha256:{i}"} for i in range(50)]}
    engine.routes[("GET", "/system/df")] = (200, layers)
    assert await client.df() == layers


async def test_missing_container_is_not_found_in_the_sdks_words(
    engine: FakeEngine, client: EngineOperations
) -> None:
    engine.routes[("GET", "/containers/nope/json")] = (
        404,
        {"message": "No such container: nope"},
    )
    with pytest.raises(EngineError) as caught:
        await client.inspect_container("nope")
    assert caught.value.status == 404
    assert caught.value.not_found
    assert str(caught.value) == (
        "404 Client Error for http+docker://localhost/v1.41/containers/nope/json: "
        'Not Found ("No such container: nope")'
    )


async def test_refusals_and_garbage_are_engine_errors(
    engine: FakeEngine, client: EngineOperations
) -> None:
    engine.routes[("DELETE", f"/containers/{CID}")] = (409, {"message": "container is running"})
    engine.routes[("GET", "/info")] = (200, b"not json")
    with pytest.raises(EngineError) as caught:
        await client.remove_container(CID)
    assert caught.value.status == 409
    assert not caught.value.not_found
    assert "container is running" in str(caught.value)
    assert query(engine.requests[-1][1]) == {"v": ["0"], "link": ["0"], "force": ["0"]}
    with pytest.raises(EngineError, match="invalid JSON"):
        await client.info()


async def test_too_old_an_engine_is_refused_and_asked_again(
    engine: FakeEngine, client: EngineOperations
) -> None:
    engine.api_version = "1.12"
    with pytest.raises(EngineError, match="too old"):
        await client.ping()
    engine.api_version = "1.43"
    engine.routes[("GET", "/_ping")] = (200, b"OK")
    assert await client.ping() is True
    assert engine.requests[-1] == ("GET", "/v1.43/_ping")


async def test_no_engine_is_an_engine_error(socket_dir: str) -> None:
    absent = EngineClient(os.path.join(socket_dir, "absent.sock"), timeout=1)
    with pytest.raises(EngineError, match="unreachable") as caught:
        await absent.json("GET", "/version", versioned=False)
    assert caught.value.status == 0


async def test_monitoring_engine_maps_answers(
    engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine.server_address}")
    engine.routes[("GET", f"/containers/{CID}/json")] = (200, {"State": {"Pid": 4242}})
    engine.routes[("DELETE", f"/containers/{CID}")] = (404, {"message": "No such container"})
    engine.routes[("GET", "/images/json")] = (200, [{"Id": "sha256:1"}])
    runtime = DockerRuntime(extra_labels={})
    loop = asyncio.get_running_loop()
    monitoring = DockerEngine(runtime, loop, only_label="berth.test-case=x")
    try:
        # Monitoring calls block: from worker threads, through the runtime's client.
        assert await asyncio.to_thread(monitoring.container_pid, CID) == 4242
        assert await asyncio.to_thread(monitoring.container_pid, "gone") is None
        await asyncio.to_thread(monitoring.remove_container, CID)  # already gone: fine
        assert await asyncio.to_thread(monitoring.dangling_images) == [{"Id": "sha256:1"}]
        assert query(engine.requests[-1][1])["filters"] == ['{"dangling": ["true"]}']
        with pytest.raises(EngineError, match="cannot list containers"):
            await asyncio.to_thread(monitoring.running_containers)  # no route: 404
        with pytest.raises(RuntimeError, match="worker thread"):
            monitoring.running_containers()  # on the loop it would wait for itself
    finally:
        await runtime.close()


async def test_runtime_routine_calls_use_the_socket(
    engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine.server_address}")
    summary = {
        "Id": CID,
        "Names": ["/web-1"],
        "State": "running",
        "Image": "busybox",
        "Created": 1_700_000_000,
        "Labels": {"berth.managed": "true", "berth.resource-id": "res_1"},
        "Ports": [{"Type": "tcp", "PrivatePort": 80, "PublicPort": 49153}],
    }
    engine.routes[("GET", "/version")] = (200, {"Version": "28.0.1"})
    engine.routes[("GET", "/containers/json")] = (200, [summary])
    engine.routes[("GET", f"/containers/{CID}/json")] = (
        200,
        {"Config": {"Labels": {"berth.hostnames": "a.example"}}},
    )
    runtime = DockerRuntime(extra_labels={})
    try:
        assert await runtime.version() == "28.0.1"
        [managed] = await runtime.list_managed("res_1")
        assert (managed.container_id, managed.name, managed.host_port) == (CID, "web-1", 49153)
        assert query(engine.requests[-1][1])["filters"] == [
            '{"label": ["berth.managed=true", "berth.resource-id=res_1"]}'
        ]
        assert await runtime.labels(CID) == {"berth.hostnames": "a.example"}
        assert await runtime.labels("gone") == {}
        engine.routes[("GET", "/containers/json")] = (500, {"message": "engine trouble"})
        with pytest.raises(RuntimeFailed, match="engine trouble"):
            await runtime.list_managed()
    finally:
        await runtime.close()


async def test_runtime_without_an_engine_is_unavailable(
    socket_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_dir}/absent.sock")
    runtime = DockerRuntime(extra_labels={})
    try:
        with pytest.raises(RuntimeUnavailable, match="unreachable"):
            await runtime.ping()
        with pytest.raises(RuntimeUnavailable, match="unreachable"):
            await runtime.version()
    finally:
        await runtime.close()


async def test_runtime_on_a_tcp_engine_goes_through_the_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Port 1 on loopback refuses: the SDK's failure surfaces as the same RuntimeUnavailable.
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    runtime = DockerRuntime(extra_labels={})
    try:
        with pytest.raises(RuntimeUnavailable, match="unreachable"):
            await runtime.version()
        monitoring = DockerEngine(runtime, asyncio.get_running_loop())
        with pytest.raises(EngineError):
            await asyncio.to_thread(monitoring.running_containers)
    finally:
        await runtime.close()


def test_the_agent_starts_without_the_docker_sdk() -> None:
    # The SDK (with requests, urllib3, charset_normalizer) is about 8 MiB of resident memory:
    # only engines it alone reaches load it. bench/agent_cost.py measures the whole process.
    probe = (
        "import sys, agent.cli, agent.daemon\n"
        "heavy = ('docker', 'requests', 'urllib3', 'charset_normalizer')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


async def test_container_events_are_this_servers_managed_containers(
    engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine.server_address}")

    def event(action: str, **labels: str) -> dict[str, Any]:
        return {"Type": "container", "Action": action, "Actor": {"ID": CID, "Attributes": labels}}

    stream = [
        event("start", **{"berth.resource-id": "res_1", "berth.server-id": "srv_a"}),
        event("die", **{"berth.resource-id": "res_2", "berth.server-id": "srv_b"}),  # not ours
        event("stop", **{"berth.managed": "true"}),  # no resource: nothing to route
        event("destroy", **{"berth.resource-id": "res_3"}),  # predates the server label
    ]
    engine.chunked = True  # objects split across chunks, several in one chunk
    engine.routes[("GET", "/events")] = (200, "".join(json.dumps(e) for e in stream).encode())
    runtime = DockerRuntime(extra_labels={}, server_id="srv_a")
    try:
        seen = [(e.resource_id, e.action) async for e in runtime.container_events(1234.5)]
    finally:
        await runtime.close()
    assert seen == [("res_1", "start"), ("res_3", "destroy")]
    asked = query(engine.requests[-1][1])
    assert asked["since"] == ["1234.500000000"]
    assert json.loads(asked["filters"][0]) == {
        "type": ["container"],
        "label": ["berth.managed=true"],
        "event": ["destroy", "die", "pause", "start", "stop", "unpause"],
    }
