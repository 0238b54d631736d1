"""Log streaming benchmark: lines/s from a container through agent and coordinator to an SSE
client, against reading the same log straight from Docker in the same run; plus the memory
the agent and the coordinator grow by while a reader is stalled.

Run: ``.venv/bin/python bench/logs.py [--lines 200000] [--repeat 3] [--stall 20] [--json]``
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import docker
import orjson
import psutil

HOST = "127.0.0.1"
MIB = 1024 * 1024
IMAGE = "berth-test/busybox:latest"
BENCH_LABEL = "berth.bench"
# ~100-character lines: a number, then padding.
PAD = "x" * 92
READY_TIMEOUT = 60.0
HTTP_TIMEOUT = 30.0
STREAM_TIMEOUT = 300.0
PROCESS_EXIT_TIMEOUT = 15.0
TARGET_LINES_PER_SECOND = 50_000


def log(message: str) -> None:
    """Progress goes to stderr so that stdout carries only the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """Ask the kernel for a free port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A child process in its own session with its output in a log file; stopped in order."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.proc = psutil.Process(self.popen.pid)

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.popen.poll() is None

    def rss(self) -> int:
        """Resident set size in bytes."""
        return int(self.proc.memory_info().rss)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the process wrote."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, wait (bounded), then SIGKILL."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=PROCESS_EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()


async def poll_until(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.1
) -> None:
    """Call ``check`` until it is true; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(every)


@dataclass
class Api:
    """The coordinator's HTTP API with the admin token."""

    base: str
    http: aiohttp.ClientSession
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(
            method, self.base + path, json=body, headers=self.headers
        ) as resp:
            answer = await resp.json(content_type=None)
            if not 200 <= resp.status < 300:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status} {answer}")
            return answer


@dataclass
class Results:
    """Everything measured (lines/s unless named otherwise)."""

    lines: int = 0
    direct_api: list[float] = field(default_factory=list)
    direct_cli: list[float] = field(default_factory=list)
    berth: list[float] = field(default_factory=list)
    berth_events: int = 0
    agent_us_per_line: list[float] = field(default_factory=list)
    coordinator_us_per_line: list[float] = field(default_factory=list)
    stall: dict[str, Any] = field(default_factory=dict)


class Bench:
    """Owns the stack (coordinator, agent, containers) and its cleanup."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.run_id = f"logs-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.processes: list[Process] = []
        self.docker = docker.from_env()
        self.coordinator: Process | None = None
        self.agent: Process | None = None

    async def start_coordinator(self, http: aiohttp.ClientSession) -> Api:
        port = free_port()
        cmd = [sys.executable, "-m", "coordinator", "serve", "--data-dir"]
        cmd += [str(self.workdir / "coordinator"), "--listen", f"{HOST}:{port}"]
        cmd += ["--log-level", "WARNING"]
        # Rate limits off: the bench measures the work, not the limiter.
        cmd += [
            "--rate-limit-token",
            "0",
            "--rate-limit-anonymous",
            "0",
            "--rate-limit-enroll",
            "0",
        ]
        server = Process("coordinator", cmd, self.workdir / "coordinator.log", dict(os.environ))
        self.processes.append(server)
        self.coordinator = server
        api = Api(f"http://{HOST}:{port}", http)

        async def ready() -> bool:
            if not server.alive():
                raise RuntimeError(f"coordinator exited early:\n{server.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, RuntimeError, ValueError):
                await api.call("GET", "/bootstrap/auth/status")
                return True
            return False

        await poll_until(ready, READY_TIMEOUT, "the coordinator to answer")
        admin = {"email": "bench@example.com", "displayName": "bench"}
        api.token = (await api.call("POST", "/bootstrap/auth/first-admin", admin))["apiToken"]
        return api

    async def start_agent(self, api: Api) -> str:
        server = await api.call("POST", "/servers", {"name": "bench-agent"})
        state_dir = self.workdir / "agent"
        env = {**os.environ, "BERTH_AGENT_EXTRA_LABELS": f"{BENCH_LABEL}={self.run_id}"}
        enroll = [sys.executable, "-m", "agent", "enroll", "--coordinator", api.base]
        enroll += ["--token", server["joinToken"], "--state-dir", str(state_dir)]
        done = await asyncio.to_thread(
            subprocess.run, enroll, env=env, capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"agent enroll failed:\n{done.stdout}{done.stderr}")
        cmd = [sys.executable, "-m", "agent", "run", "--state-dir", str(state_dir)]
        self.agent = Process("agent", cmd, self.workdir / "agent.log", env)
        self.processes.append(self.agent)
        agent = self.agent

        async def online() -> bool:
            if not agent.alive():
                raise RuntimeError(f"agent exited early:\n{agent.log_tail()}")
            shown = await api.call("GET", f"/servers/{server['id']}")
            return bool(shown["server"]["agent"]["status"] == "online")

        await poll_until(online, READY_TIMEOUT, "the agent to come online")
        return str(server["id"])

    async def deployed_resource(self, api: Api, server_id: str, name: str, command: str) -> str:
        """A resource running ``command`` (no port exposure, no health check), deployed."""
        project = await api.call("POST", "/projects", {"name": f"bench-{name}"})
        environment = await api.call(
            "POST", "/environments", {"projectId": project["id"], "name": "production"}
        )
        body = {"projectId": project["id"], "environmentId": environment["id"], "name": name}
        resource = await api.call("POST", "/resources", body)
        image, _, tag = IMAGE.partition(":")
        profiles = {
            "source": {"source": {"kind": "docker-image", "imageName": image, "imageTag": tag}},
            "network-profile": {"networkProfile": {"internalPort": 8080, "exposureMode": "none"}},
            "runtime-profile": {"runtimeProfile": {"startCommand": command}},
            "health-policy": {"healthCheck": {"enabled": False}},
        }
        for path, config in profiles.items():
            await api.call("POST", f"/resources/{resource['id']}/{path}", config)
        deployment = await api.call(
            "POST",
            "/deployments",
            {
                "projectId": project["id"],
                "environmentId": environment["id"],
                "resourceId": resource["id"],
                "serverId": server_id,
            },
        )

        async def succeeded() -> bool:
            shown = await api.call("GET", f"/deployments/{deployment['id']}")
            status = shown["deployment"]["status"]
            if status in ("failed", "canceled"):
                raise RuntimeError(f"deployment {status}: {shown['deployment']['errorMessage']}")
            return bool(status == "succeeded")

        await poll_until(succeeded, 120, f"the deployment of {name}")
        return str(resource["id"])

    def container_of(self, resource_id: str) -> Any:
        found = self.docker.containers.list(filters={"label": f"berth.resource-id={resource_id}"})
        if len(found) != 1:
            raise RuntimeError(f"expected one container for {resource_id}, found {len(found)}")
        return found[0]

    # ---- measurements ---------------------------------------------------------------------

    async def direct_api(self, container_id: str) -> int:
        """Read the whole log from Docker's API (what the agent reads); count lines."""
        connector = aiohttp.UnixConnector(path="/var/run/docker.sock")
        async with aiohttp.ClientSession(connector=connector) as http:
            url = f"http://docker/containers/{container_id}/logs"
            params = {"stdout": "1", "stderr": "1", "timestamps": "1", "follow": "0"}
            async with http.get(url, params=params) as response:
                lines = 0
                async for data in response.content.iter_any():
                    lines += data.count(b"\n")
                return lines

    async def direct_cli(self, container_id: str) -> int:
        """``docker logs -t <id> | wc -l`` (the daemon's ceiling)."""
        proc = await asyncio.create_subprocess_shell(
            f"docker logs -t {container_id} 2>&1 | wc -l", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        return int(out.strip() or 0)

    async def berth(self, api: Api, resource_id: str) -> tuple[int, int]:
        """The whole log as SSE from the coordinator, parsed like a client would."""
        url = f"{api.base}/resources/{resource_id}/runtime-logs/stream"
        params = {"follow": "false", "cursor": "c1"}
        timeout = aiohttp.ClientTimeout(total=STREAM_TIMEOUT)
        lines = events = 0
        async with api.http.get(url, params=params, headers=api.headers, timeout=timeout) as resp:
            if resp.status != 200:
                raise RuntimeError(f"stream: HTTP {resp.status} {await resp.text()}")
            async for raw in resp.content:
                if raw.startswith(b"data: "):
                    data = orjson.loads(raw[6:])
                    if "logs" in data:
                        lines += len(data["logs"])
                        events += 1
                elif raw.startswith(b"event: end"):
                    break
        return lines, events

    async def timed(self, work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
        begun = time.perf_counter()
        result = await work()
        return time.perf_counter() - begun, result

    async def stalled(self, api: Api, history_resource: str, live_resource: str) -> dict[str, Any]:
        """Stall one history reader and one live follower; sample RSS; then drain the follow."""
        assert self.agent is not None
        assert self.coordinator is not None
        agent, coordinator = self.agent, self.coordinator
        before = {"agent": agent.rss(), "coordinator": coordinator.rss()}
        peak = dict(before)
        streams = []
        for resource_id, params in (
            (history_resource, {"follow": "false", "cursor": "c1"}),
            (live_resource, {"follow": "true", "tailLines": "0"}),
        ):
            response = await api.http.get(
                f"{api.base}/resources/{resource_id}/runtime-logs/stream",
                params=params,
                headers=api.headers,
                timeout=aiohttp.ClientTimeout(total=None),
            )
            streams.append(response)
        deadline = time.monotonic() + self.args.stall
        while time.monotonic() < deadline:
            peak["agent"] = max(peak["agent"], agent.rss())
            peak["coordinator"] = max(peak["coordinator"], coordinator.rss())
            await asyncio.sleep(0.25)
        after = {"agent": agent.rss(), "coordinator": coordinator.rss()}
        # Resume the live follower: the lines dropped meanwhile arrive as gap markers.
        dropped, gaps = 0, 0
        live = streams[1]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                async for raw in live.content:
                    if raw.startswith(b'data: {"dropped"'):
                        dropped += orjson.loads(raw[6:])["dropped"]
                        gaps += 1
                        if gaps >= 1:
                            break
        for response in streams:
            response.close()
        return {
            "seconds": self.args.stall,
            "agent_rss_before_mib": before["agent"] / MIB,
            "agent_rss_growth_mib": (peak["agent"] - before["agent"]) / MIB,
            "agent_rss_after_mib": after["agent"] / MIB,
            "coordinator_rss_before_mib": before["coordinator"] / MIB,
            "coordinator_rss_growth_mib": (peak["coordinator"] - before["coordinator"]) / MIB,
            "coordinator_rss_after_mib": after["coordinator"] / MIB,
            "live_lines_dropped_reported": dropped,
        }

    async def run(self) -> Results:
        results = Results(lines=self.args.lines)
        self.docker.images.get(IMAGE)  # fails early if the image is missing
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            api = await self.start_coordinator(http)
            server_id = await self.start_agent(api)
            n = self.args.lines
            producer = f"seq 1 {n} | sed 's/$/ {PAD}/'; sleep 3600"
            log(f"stack up ({self.run_id}); deploying a producer of {n} lines")
            resource_id = await self.deployed_resource(api, server_id, "history", producer)
            container = self.container_of(resource_id)

            async def printed() -> bool:
                tail = await asyncio.to_thread(container.logs, tail=1)
                return bool(tail.startswith(f"{n} ".encode()))

            await poll_until(printed, 120, "the producer to print every line", every=0.25)
            for round_number in range(self.args.repeat):
                seconds, count = await self.timed(lambda: self.direct_api(container.id))
                self.check(count, n, "direct API")
                results.direct_api.append(count / seconds)
                seconds, count = await self.timed(lambda: self.direct_cli(container.id))
                self.check(count, n, "docker logs")
                results.direct_cli.append(count / seconds)
                cpu_before = self.cpu_seconds()
                seconds, (count, events) = await self.timed(lambda: self.berth(api, resource_id))
                cpu_after = self.cpu_seconds()
                self.check(count, n, "berth")
                results.agent_us_per_line.append((cpu_after[0] - cpu_before[0]) / n * 1e6)
                results.coordinator_us_per_line.append((cpu_after[1] - cpu_before[1]) / n * 1e6)
                results.berth.append(count / seconds)
                results.berth_events = events
                log(
                    f"round {round_number + 1}: direct API {results.direct_api[-1]:,.0f}/s, "
                    f"docker logs {results.direct_cli[-1]:,.0f}/s, "
                    f"berth {results.berth[-1]:,.0f}/s ({events} events; CPU per line: agent "
                    f"{results.agent_us_per_line[-1]:.1f} us, coordinator "
                    f"{results.coordinator_us_per_line[-1]:.1f} us)"
                )
            if self.args.stall > 0:
                live = (
                    f'i=0; while true; do i=$((i+1)); seq 1 2000 | sed "s/$/ $i {PAD}/"; '
                    "sleep 0.05; done"
                )
                live_id = await self.deployed_resource(api, server_id, "live", live)
                log(f"stalling a history reader and a live follower for {self.args.stall:g} s")
                results.stall = await self.stalled(api, resource_id, live_id)
        return results

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time (user + system) the agent and the coordinator used so far."""
        assert self.agent is not None
        assert self.coordinator is not None
        times = [p.proc.cpu_times() for p in (self.agent, self.coordinator)]
        return times[0].user + times[0].system, times[1].user + times[1].system

    @staticmethod
    def check(count: int, expected: int, what: str) -> None:
        if count != expected:
            raise RuntimeError(f"{what} read {count} lines, expected {expected}")

    def cleanup(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        for container in self.docker.containers.list(
            all=True, filters={"label": f"{BENCH_LABEL}={self.run_id}"}
        ):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        self.docker.close()


def summary(results: Results) -> dict[str, Any]:
    """The figures as one JSON-able dict (medians of the rounds)."""
    berth = statistics.median(results.berth)
    direct = statistics.median(results.direct_api)
    cli = statistics.median(results.direct_cli)
    return {
        "lines": results.lines,
        "rounds": len(results.berth),
        "direct_api_lines_per_s": round(direct),
        "docker_logs_cli_lines_per_s": round(cli),
        "berth_sse_lines_per_s": round(berth),
        "berth_sse_events": results.berth_events,
        "agent_cpu_us_per_line": round(statistics.median(results.agent_us_per_line), 2),
        "coordinator_cpu_us_per_line": round(statistics.median(results.coordinator_us_per_line), 2),
        "ratio_to_direct_api": round(berth / direct, 3),
        "ratio_to_docker_logs_cli": round(berth / cli, 3),
        "target_lines_per_s": TARGET_LINES_PER_SECOND,
        "meets_target": berth >= TARGET_LINES_PER_SECOND and berth >= direct / 2,
        "stall": {k: round(v, 2) if isinstance(v, float) else v for k, v in results.stall.items()},
    }


def table(data: dict[str, Any]) -> str:
    rows = [
        ("lines per round", f"{data['lines']:,}"),
        ("rounds (medians shown)", str(data["rounds"])),
        ("Docker API read directly", f"{data['direct_api_lines_per_s']:,} lines/s"),
        ("docker logs CLI | wc -l", f"{data['docker_logs_cli_lines_per_s']:,} lines/s"),
        ("Berth: agent -> coordinator -> SSE", f"{data['berth_sse_lines_per_s']:,} lines/s"),
        ("Berth / direct API", f"{data['ratio_to_direct_api']:.2f}"),
        ("Berth / docker logs", f"{data['ratio_to_docker_logs_cli']:.2f}"),
        ("SSE events (chunks)", str(data["berth_sse_events"])),
        ("agent CPU per line", f"{data['agent_cpu_us_per_line']} us"),
        ("coordinator CPU per line", f"{data['coordinator_cpu_us_per_line']} us"),
        ("target (>= 50k/s and >= half direct)", "met" if data["meets_target"] else "NOT met"),
    ]
    for key, value in data["stall"].items():
        rows.append((f"stall: {key}", str(value)))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000, help="lines in the history")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each reader")
    parser.add_argument(
        "--stall", type=float, default=20.0, help="stalled-reader seconds (0: skip)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.lines < 1 or args.repeat < 1:
        parser.error("--lines and --repeat must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-logs-"))
    bench = Bench(args, workdir)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        results = asyncio.run(bench.run())
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    except Exception as exc:
        log(f"failed: {exc}")
        for process in bench.processes:
            log(f"--- {process.name} log tail ---\n{process.log_tail()}")
        return 1
    finally:
        bench.cleanup()
        if args.keep:
            log(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    data = summary(results)
    print(json.dumps(data, indent=2) if args.json else table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
