"""Deploy benchmark: Berth's POST-to-succeeded time against a hand-run docker baseline."""

import argparse
import asyncio
import contextlib
import functools
import json
import math
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import docker
import psutil

HOST = "127.0.0.1"
MIB = 1024 * 1024
IMAGE, TAG = "berth-test/busybox", "latest"
PORT = 8080
COMMAND = f"mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p {PORT} -h /www"
BENCH_LABEL = "berth.bench"
TERMINAL = {"succeeded", "failed", "canceled", "rolled-back"}
TARGET_OVERHEAD_MS = 150.0

# Every wait is bounded.
READY_TIMEOUT = 60.0
DEPLOY_TIMEOUT = 120.0
HTTP_TIMEOUT = 30.0
PROCESS_EXIT_TIMEOUT = 15.0


def log(message: str) -> None:
    """Progress goes to stderr so that stdout carries only the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """Ask the kernel for a free port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Process:
    """A child process in its own session, with its output in a log file; stopped in order."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        # A new session: Ctrl-C reaches only this script, which then stops the children itself.
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
        """Whether the process is still running."""
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
                log(f"{self.name} did not exit within {PROCESS_EXIT_TIMEOUT:g} s; killing it")
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()


async def poll_until(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.05
) -> None:
    """Call ``check`` every ``every`` seconds until it is true; raise after ``timeout``."""
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

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as resp:
            answer = await resp.json(content_type=None)
            if not 200 <= resp.status < 300:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status} {answer}")
            return answer


@dataclass
class Target:
    """One resource to deploy, with the ids POST /deployments needs."""

    project_id: str
    environment_id: str
    resource_id: str
    server_id: str


@dataclass
class Results:
    """Everything the run measured; seconds unless named otherwise."""

    berth_first: list[float] = field(default_factory=list)
    berth_redeploy: list[float] = field(default_factory=list)
    berth_redeploy_switch: list[float] = field(default_factory=list)
    first_timelines: list[dict[str, float]] = field(default_factory=list)
    parallel_timelines: list[dict[str, float]] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    parallel: int = 0
    parallel_wall: float = 0.0
    baseline_parallel_wall: float = 0.0
    baseline_parallel_each: list[float] = field(default_factory=list)
    parallel_each: list[float] = field(default_factory=list)
    agent_idle_rss: int = 0
    agent_peak_rss: int = 0
    agent_rss_samples: int = 0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cpus: int = 0


class Bench:
    """Owns the stack (caddy, coordinator, agent, containers) and its cleanup."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.run_id = f"deploy-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.processes: list[Process] = []
        # One pooled connection per concurrent baseline container, so urllib3 never discards.
        self.docker = docker.from_env(max_pool_size=args.parallel + 2)
        # The baseline's blocking docker calls get one thread each; the default executor
        # (cpus + 4 threads) would queue them and understate what the daemon can do.
        self.pool = ThreadPoolExecutor(max_workers=args.parallel + 2, thread_name_prefix="bench")
        self.agent: Process | None = None
        self.caddy_admin = free_port()
        self.caddy_http = free_port()

    # ---- stack ----------------------------------------------------------------------------

    def start_caddy(self) -> None:
        directory = self.workdir / "caddy"
        directory.mkdir()
        config = directory / "caddy.json"
        config.write_text(json.dumps({"admin": {"listen": f"{HOST}:{self.caddy_admin}"}}))
        env = {**os.environ, "HOME": str(directory), "XDG_DATA_HOME": str(directory)}
        cmd = ["caddy", "run", "--config", str(config)]
        self.processes.append(Process("caddy", cmd, directory / "caddy.log", env))

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
        api = Api(f"http://{HOST}:{port}", http)

        async def ready() -> bool:
            if not server.alive():
                raise RuntimeError(f"coordinator exited early:\n{server.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, RuntimeError, ValueError):
                await api.call("GET", "/bootstrap/auth/status")
                return True
            return False

        await poll_until(ready, READY_TIMEOUT, "the coordinator to answer", every=0.1)
        admin = {"email": "bench@example.com", "displayName": "bench"}
        api.token = (await api.call("POST", "/bootstrap/auth/first-admin", admin))["apiToken"]
        return api

    async def start_agent(self, api: Api) -> str:
        server = await api.call("POST", "/servers", {"name": "bench-agent"})
        state_dir = self.workdir / "agent"
        env = {
            **os.environ,
            "BERTH_AGENT_EDGE_ADMIN_URL": f"http://{HOST}:{self.caddy_admin}",
            "BERTH_AGENT_EDGE_LISTEN": f"{HOST}:{self.caddy_http}",
            "BERTH_AGENT_EXTRA_LABELS": f"{BENCH_LABEL}={self.run_id}",
        }
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

    async def make_targets(self, api: Api, server_id: str, count: int, prefix: str) -> list[Target]:
        project = await api.call("POST", "/projects", {"name": f"bench-{prefix}"})
        env_body = {"projectId": project["id"], "name": "production"}
        environment = await api.call("POST", "/environments", env_body)
        health = {
            "enabled": True,
            "type": "http",
            "intervalSeconds": self.args.interval,
            "timeoutSeconds": 1,
            "retries": min(1000, int(DEPLOY_TIMEOUT / self.args.interval)),
            "http": {"path": "/"},
        }
        source = {"kind": "docker-image", "imageName": IMAGE, "imageTag": TAG}
        profiles = {
            "source": {"source": source},
            "network-profile": {
                "networkProfile": {"internalPort": PORT, "exposureMode": "reverse-proxy"}
            },
            "runtime-profile": {"runtimeProfile": {"startCommand": COMMAND}},
            "health-policy": {"healthCheck": health},
        }
        targets = []
        for index in range(count):
            body = {
                "projectId": project["id"],
                "environmentId": environment["id"],
                "name": f"{prefix}-{index:02d}",
            }
            resource = await api.call("POST", "/resources", body)
            for path, config in profiles.items():
                await api.call("POST", f"/resources/{resource['id']}/{path}", config)
            targets.append(Target(project["id"], environment["id"], resource["id"], server_id))
        return targets

    async def deploy(self, api: Api, target: Target) -> float:
        """POST /deployments, then GET it every poll interval until terminal; seconds taken."""
        return (await self.deploy_traced(api, target))[0]

    async def deploy_traced(self, api: Api, target: Target) -> tuple[float, str, float]:
        """Like ``deploy``; also returns the deployment id and the wall clock at the POST."""
        body = {
            "projectId": target.project_id,
            "environmentId": target.environment_id,
            "resourceId": target.resource_id,
            "serverId": target.server_id,
        }
        wall = time.time()
        begun = time.perf_counter()
        deployment_id = (await api.call("POST", "/deployments", body))["id"]
        deadline = begun + DEPLOY_TIMEOUT
        while True:
            shown = await api.call("GET", f"/deployments/{deployment_id}")
            status = shown["deployment"]["status"]
            if status in TERMINAL:
                taken = time.perf_counter() - begun
                if status != "succeeded":
                    raise RuntimeError(f"deployment {deployment_id} ended {status}: {shown}")
                return taken, deployment_id, wall
            if time.perf_counter() > deadline:
                raise RuntimeError(f"deployment {deployment_id} still {status}")
            await asyncio.sleep(self.args.poll)

    async def timeline(self, api: Api, deployment_id: str, wall: float) -> dict[str, float]:
        """Seconds from the POST to the first event of each type (events carry host time)."""
        answer = await api.call("GET", f"/deployments/{deployment_id}/events")
        offsets: dict[str, float] = {}
        for envelope in answer["envelopes"]:
            event = envelope["event"]
            name = f"{event['phase']}:{event['eventType']}"
            emitted = datetime.fromisoformat(event["emittedAt"]).timestamp()
            offsets.setdefault(name, emitted - wall)
        return offsets

    # ---- baseline -------------------------------------------------------------------------

    def _run_container(self) -> tuple[Any, int]:
        # Published on 127.0.0.1 with an ephemeral host port, as the agent does.
        options: dict[str, Any] = {
            "detach": True,
            "labels": {BENCH_LABEL: self.run_id},
            "ports": {f"{PORT}/tcp": (HOST, None)},
        }
        container = self.docker.containers.run(f"{IMAGE}:{TAG}", ["sh", "-c", COMMAND], **options)
        container.reload()
        host_port = int(container.attrs["NetworkSettings"]["Ports"][f"{PORT}/tcp"][0]["HostPort"])
        return container, host_port

    async def baseline_once(self, http: aiohttp.ClientSession) -> float:
        """docker run + the agent's probe loop (probe at once, then every interval) until 200."""
        begun = time.perf_counter()
        loop = asyncio.get_running_loop()
        container, host_port = await loop.run_in_executor(self.pool, self._run_container)
        try:
            url = f"http://{HOST}:{host_port}/"
            probe_timeout = aiohttp.ClientTimeout(total=1)
            while True:
                started = time.perf_counter()
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(url, timeout=probe_timeout) as resp:
                        await resp.read()
                        if resp.status == 200:
                            return time.perf_counter() - begun
                if started - begun > DEPLOY_TIMEOUT:
                    raise RuntimeError("baseline container never answered 200")
                await asyncio.sleep(max(0.0, self.args.interval - (time.perf_counter() - started)))
        finally:
            await loop.run_in_executor(self.pool, functools.partial(container.remove, force=True))

    # ---- phases ---------------------------------------------------------------------------

    async def parallel(self, api: Api, targets: list[Target], results: Results) -> None:
        assert self.agent is not None
        agent = self.agent
        results.agent_idle_rss = agent.rss()
        peak, samples = results.agent_idle_rss, 0
        stop = asyncio.Event()

        async def sample() -> None:
            nonlocal peak, samples
            while not stop.is_set():
                with contextlib.suppress(psutil.Error):
                    peak = max(peak, agent.rss())
                    samples += 1
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        begun = time.perf_counter()
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self.deploy_traced(api, t)) for t in targets]
            results.parallel_wall = time.perf_counter() - begun
        finally:
            stop.set()
            await sampler
        results.parallel = len(targets)
        results.parallel_each = [t.result()[0] for t in tasks]
        for task in tasks:
            _, deployment_id, wall = task.result()
            results.parallel_timelines.append(await self.timeline(api, deployment_id, wall))
        results.agent_peak_rss, results.agent_rss_samples = peak, samples

    async def run(self) -> Results:
        results = Results(cpus=os.cpu_count() or 0)
        self.docker.images.get(f"{IMAGE}:{TAG}")  # fails early if the image is missing
        self.start_caddy()
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            api = await self.start_coordinator(http)
            server_id = await self.start_agent(api)
            log(f"stack up (run id {self.run_id}); preparing resources")
            sequential = await self.make_targets(api, server_id, self.args.repeat, "seq")
            fanout = await self.make_targets(api, server_id, self.args.parallel, "par")
            # One warm-up of each side so that first-call costs (imports, docker client
            # connection, caddy's first config load) are not counted in either.
            warm = await self.make_targets(api, server_id, 1, "warm")
            await self.deploy(api, warm[0])
            await self.baseline_once(http)
            for index, target in enumerate(sequential):
                taken, deployment_id, wall = await self.deploy_traced(api, target)
                results.berth_first.append(taken)
                results.first_timelines.append(await self.timeline(api, deployment_id, wall))
                results.baseline.append(await self.baseline_once(http))
                log(
                    f"round {index + 1}/{self.args.repeat}: berth "
                    f"{results.berth_first[-1] * 1000:.0f} ms, docker "
                    f"{results.baseline[-1] * 1000:.0f} ms"
                )
            if not self.args.skip_redeploy:
                for target in sequential:
                    taken, deployment_id, wall = await self.deploy_traced(api, target)
                    results.berth_redeploy.append(taken)
                    offsets = await self.timeline(api, deployment_id, wall)
                    switched = [v for k, v in offsets.items() if k.endswith(":traffic-switched")]
                    if not switched:
                        raise RuntimeError(f"{deployment_id} has no traffic-switched event")
                    results.berth_redeploy_switch.append(switched[0])
                log("redeploys done")
            log(f"{self.args.parallel} deployments in parallel")
            await self.parallel(api, fanout, results)
            log(f"{self.args.parallel} docker runs in parallel")
            begun = time.perf_counter()
            async with asyncio.TaskGroup() as group:
                runs = [group.create_task(self.baseline_once(http)) for _ in fanout]
            results.baseline_parallel_wall = time.perf_counter() - begun
            results.baseline_parallel_each = [run.result() for run in runs]
        results.load_average = os.getloadavg()
        return results

    def cleanup(self) -> None:
        """Stop the agent first (no new containers), then remove every labelled container."""
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                process.stop()
        with contextlib.suppress(Exception):
            label: dict[str, str | list[str] | bool] = {"label": f"{BENCH_LABEL}={self.run_id}"}
            for container in self.docker.containers.list(all=True, filters=label):
                with contextlib.suppress(Exception):
                    container.remove(force=True)
        self.pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(Exception):
            self.docker.close()


# ---- report -------------------------------------------------------------------------------


def median_timeline(timelines: list[dict[str, float]]) -> dict[str, float]:
    """Per event (phase:type), the median ms from the POST, in the order of the events."""
    names: list[str] = []
    for timeline in timelines:
        names += [name for name in timeline if name not in names]
    merged = {n: [t[n] for t in timelines if n in t] for n in names}
    ordered = sorted(merged.items(), key=lambda item: statistics.median(item[1]))
    return {name: round(statistics.median(values) * 1000, 1) for name, values in ordered}


def summary(args: argparse.Namespace, results: Results) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float] | None:
        if not values:
            return None
        return {
            "median_ms": round(statistics.median(values) * 1000, 1),
            "p90_ms": round(percentile(values, 90) * 1000, 1),
            "min_ms": round(min(values) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
        }

    berth, baseline = stats(results.berth_first), stats(results.baseline)
    assert berth is not None
    assert baseline is not None
    overhead = berth["median_ms"] - baseline["median_ms"]
    return {
        "repeat": args.repeat,
        "health_interval_s": args.interval,
        "status_poll_s": args.poll,
        "berth_first_deploy": berth,
        "berth_redeploy": stats(results.berth_redeploy),
        "berth_redeploy_until_switched": stats(results.berth_redeploy_switch),
        "docker_baseline": baseline,
        "overhead_median_ms": round(overhead, 1),
        "overhead_p90_ms": round(berth["p90_ms"] - baseline["p90_ms"], 1),
        "ratio_median": round(berth["median_ms"] / baseline["median_ms"], 2),
        "first_deploy_events_ms": median_timeline(results.first_timelines),
        "target_overhead_ms": TARGET_OVERHEAD_MS,
        "parallel": {
            "deployments": results.parallel,
            "wall_ms": round(results.parallel_wall * 1000, 1),
            "docker_baseline_wall_ms": round(results.baseline_parallel_wall * 1000, 1),
            "docker_baseline_each": stats(results.baseline_parallel_each),
            "each": stats(results.parallel_each),
            "events_ms": median_timeline(results.parallel_timelines),
            "agent_idle_rss_mib": round(results.agent_idle_rss / MIB, 1),
            "agent_peak_rss_mib": round(results.agent_peak_rss / MIB, 1),
            "rss_samples": results.agent_rss_samples,
        },
        "cpus": results.cpus,
        "load_average_at_end": [round(x, 2) for x in results.load_average],
    }


def table(data: dict[str, Any]) -> str:
    def row(name: str, value: dict[str, float] | None) -> str:
        if value is None:
            return f"| {name} | - | - | - | - |"
        cells = " | ".join(f"{value[k]:.0f}" for k in ("median_ms", "p90_ms", "min_ms", "max_ms"))
        return f"| {name} | {cells} |"

    par = data["parallel"]
    lines = [
        f"{data['repeat']} rounds, health interval {data['health_interval_s']:g} s, "
        f"status polled every {data['status_poll_s'] * 1000:.0f} ms",
        "",
        "| ms | median | p90 | min | max |",
        "|---|---|---|---|---|",
        row("Berth first deploy (POST -> succeeded)", data["berth_first_deploy"]),
        row("docker run + health wait", data["docker_baseline"]),
        row(
            "Berth redeploy, POST -> traffic-switched event", data["berth_redeploy_until_switched"]
        ),
        row("Berth redeploy, POST -> succeeded (drain + stop)", data["berth_redeploy"]),
        row(f"each of {par['deployments']} parallel deploys", par["each"]),
        row(f"each of {par['deployments']} parallel docker runs", par["docker_baseline_each"]),
        "",
        f"Berth overhead: median {data['overhead_median_ms']:.0f} ms, "
        f"p90 {data['overhead_p90_ms']:.0f} ms (target < {data['target_overhead_ms']:.0f} ms); "
        f"ratio {data['ratio_median']:.2f}x",
        f"{par['deployments']} docker runs + health waits in parallel (baseline): "
        f"{par['docker_baseline_wall_ms']:.0f} ms",
        f"{par['deployments']} deployments in parallel: all succeeded in "
        f"{par['wall_ms']:.0f} ms; agent RSS idle {par['agent_idle_rss_mib']:.1f} MiB, "
        f"peak {par['agent_peak_rss_mib']:.1f} MiB ({par['rss_samples']} samples)",
        f"{data['cpus']} CPUs, load average at end {data['load_average_at_end']}",
        "",
        "Median ms from the POST to the first event of each kind (phase:eventType):",
        "",
        "| event | first deploy | parallel |",
        "|---|---|---|",
    ]
    first, parallel = data["first_deploy_events_ms"], par["events_ms"]
    for name in list(first) + [n for n in parallel if n not in first]:
        cells = [f"{d[name]:.0f}" if name in d else "-" for d in (first, parallel)]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of each side")
    parser.add_argument("--parallel", type=int, default=20, help="parallel deployments")
    parser.add_argument("--interval", type=float, default=0.1, help="health interval, s")
    parser.add_argument("--poll", type=float, default=0.02, help="status poll interval, s")
    parser.add_argument("--skip-redeploy", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.repeat < 1 or args.parallel < 1:
        parser.error("--repeat and --parallel must be at least 1")
    if shutil.which("caddy") is None:
        parser.error("caddy is not on PATH")

    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-deploy-"))
    bench = Bench(args, workdir)
    # SIGTERM behaves like Ctrl-C, so that the finally below cleans up either way.
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
    data = summary(args, results)
    print(json.dumps(data, indent=2) if args.json else table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
