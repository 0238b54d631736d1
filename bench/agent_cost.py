"""Agent cost: a real ``berth-agent run`` process's CPU per sample and RSS after 20 deployments.

Issue 4's targets: under 1% of one core at the default interval (15 s) and under 60 MiB RSS.
Issue 14's, for the real agent at idle: under 0.5% of one core, at most 40 MiB RSS and at most
8 threads.

Real-agent figures (``--mode agent``, first table): an in-process coordinator on 127.0.0.1
(temp data dir), one server enrolled and served by a real ``python -m agent run``
subprocess. The measured agent has done a real agent's work first: once it is online and has
stored a first sample, the bench creates ``--containers`` resources (the local busybox test
image, an idle command, port 8080 published, no edge exposure, no health check) and deploys
each through the coordinator's API, so the agent itself looked the image up, created, started
and labelled every container (``berth.managed=true`` and berth.* ids, plus the bench label
through ``BERTH_AGENT_EXTRA_LABELS``; all removed at the end). The agent runs once at the default
15 s interval (it makes the first deployments) and once at 1 s (a second agent process on the
same state dir: it redeploys every resource, so it also stopped and removed the old
containers). Only then does the window start: over it the bench reads the agent process's CPU
time (/proc/<pid>/stat utime + stime, every thread) and counts the samples the coordinator
stored in that window (``GET /runtime-monitoring/samples``). Memory, read at the end of the
window: VmRSS, RssAnon/RssFile (/proc/<pid>/status) and PSS (/proc/<pid>/smaps_rollup), so the
reader sees how much is shared libraries. ``--no-deploy`` starts the containers directly
instead (the agent only samples them), which is what this bench measured before.

Baselines measured in the same run: a bare python interpreter, and a python process that
only imports the agent's modules (``agent.cli`` and ``agent.daemon``: the RSS floor of the
code before any work). CPU time comes in clock ticks (10 ms): use windows of a minute or
more at 15 s. The agent and the import floor run with the packaged agent's environment
(``PYTHONOPTIMIZE=2``, as the systemd unit sets it); ``--agent-env NAME=VALUE`` adds to it or
overrides it (for trials such as MALLOC_ARENA_MAX=2, or PYTHONOPTIMIZE=0 for the agent without).

Sampler-only figures (``--mode sampler``, second table): the ``MonitoringFeature`` runs
in-process (sampling loop, cgroup reads, spool writes in SQLite, Docker list/inspect/df)
without a coordinator link, over containers the bench starts directly (in ``--mode both``,
over the ones the agent deployed). Its baselines: docker SDK ``container.stats(stream=False)``
on a few of the same containers, and a bare psutil loop of the host-only figures.

The default (``--mode both``) prints both tables.

    .venv/bin/python bench/agent_cost.py [--mode both|agent|sampler] [--containers 20]
        [--default-window 120] [--fast-window 30] [--no-deploy]
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import psutil

from agent.monitoring.engine import DockerEngine
from agent.monitoring.feature import MonitoringFeature
from agent.monitoring.spool import Spool, spool_bound
from agent.runtime.docker import DockerRuntime

if TYPE_CHECKING:
    from tests.harness import Coordinator

# The harness's in-process coordinator lives in tests/, which is not installed: it is imported
# from the repository root, and only in the real-agent mode, so that the sampler-only mode's
# RSS stays the sampler's own (the coordinator and aiohttp would add about 30 MiB).
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

MIB = 1024 * 1024
IMAGE = "berth-test/busybox:latest"
BENCH_LABEL = "berth.bench"
TARGET_CPU_PERCENT = 1.0
TARGET_RSS_MIB = 60.0
# Issue 14: the real agent at idle.
TARGET_AGENT_CPU_PERCENT = 0.5
TARGET_AGENT_RSS_MIB = 40.0
TARGET_AGENT_THREADS = 8
# Idle, and quick to stop: a redeploy stops the old container (PID 1 ignores an untrapped TERM).
IDLE_COMMAND = "trap 'exit 0' TERM; sleep 3600 & wait"
TERMINAL = {"succeeded", "failed", "canceled", "rolled-back"}


def log(message: str) -> None:
    """Progress on stderr; stdout carries the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def dockerd_cpu_seconds() -> float | None:
    """CPU seconds used so far by the Docker daemon (None when it cannot be read)."""
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "dockerd":
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                return float(times.user + times.system)
    return None


def start_containers(client: docker.DockerClient, count: int, run_id: str) -> list[Any]:
    """Idle, labelled like Berth deployments so attribution runs its normal path."""
    containers = []
    for index in range(count):
        containers.append(
            client.containers.run(
                IMAGE,
                ["sleep", "3600"],
                detach=True,
                labels={
                    BENCH_LABEL: run_id,
                    "berth.managed": "true",
                    "berth.project-id": "prj_bench",
                    "berth.environment-id": "env_bench",
                    "berth.resource-id": f"res_{index:02}",
                    "berth.deployment-id": f"dep_{index:02}",
                },
            )
        )
    return containers


async def measure_sampler(
    engine: DockerEngine, interval: float, window: float, state_dir: Path
) -> dict[str, Any]:
    """Run the feature at ``interval`` for a warm-up plus ``window`` seconds."""
    spool = Spool(state_dir / "spool.sqlite3", spool_bound(24, interval))
    feature = MonitoringFeature(engine, state_dir, spool, interval)
    runner = asyncio.create_task(feature.run())
    try:
        # Warm-up: priming, the first /system/df and the first sample are one-off costs.
        deadline = time.monotonic() + 30
        # Polls the feature's counter (it exposes no event), bounded by the deadline.
        while feature.samples_taken < 1 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        cpu0, samples0, dockerd0 = time.process_time(), feature.samples_taken, dockerd_cpu_seconds()
        wall0 = time.monotonic()
        await asyncio.sleep(window)
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        dockerd1 = dockerd_cpu_seconds()
        samples = feature.samples_taken - samples0
        rss = psutil.Process().memory_info().rss
        newest = spool.oldest(1, 1 << 20)
        containers = len(newest[0].containers) if newest else 0
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        spool.close()
    dockerd = dockerd1 - dockerd0 if dockerd0 is not None and dockerd1 is not None else None
    return {
        "interval_s": interval,
        "window_s": round(wall, 1),
        "samples": samples,
        "containers_in_sample": containers,
        "cpu_ms_per_sample": round(cpu / max(samples, 1) * 1000, 2),
        "cpu_percent_one_core": round(cpu / wall * 100, 3),
        "dockerd_cpu_percent_one_core": round(dockerd / wall * 100, 3) if dockerd else None,
        "rss_mib": round(rss / MIB, 1),
    }


async def measure_dockerd_idle(window: float) -> dict[str, Any]:
    """dockerd's CPU without the sampler: on a shared machine other clients keep it busy too."""
    before, started = dockerd_cpu_seconds(), time.monotonic()
    await asyncio.sleep(window)
    after, wall = dockerd_cpu_seconds(), time.monotonic() - started
    if before is None or after is None:
        return {"dockerd_cpu_percent_one_core": None}
    return {
        "window_s": round(wall, 1),
        "dockerd_cpu_percent_one_core": round((after - before) / wall * 100, 3),
    }


def measure_stats_calls(containers: list[Any], calls: int) -> dict[str, Any]:
    """The baseline the sampler avoids: blocking one-shot stats per container."""
    walls = []
    cpu0 = time.process_time()
    for container in containers[:calls]:
        started = time.monotonic()
        container.stats(stream=False)
        walls.append(time.monotonic() - started)
    cpu = time.process_time() - cpu0
    per_call = sum(walls) / len(walls)
    return {
        "calls": len(walls),
        "wall_s_per_container": round(per_call, 3),
        "cpu_ms_per_container": round(cpu / len(walls) * 1000, 2),
        "extrapolated_wall_s_per_sample_of_20": round(per_call * 20, 1),
    }


def measure_bare_psutil(iterations: int) -> dict[str, Any]:
    """The floor: host-only figures without containers, spool or Docker."""
    cpu0 = time.process_time()
    for _ in range(iterations):
        psutil.cpu_times()
        psutil.virtual_memory()
        psutil.disk_usage("/")
        psutil.net_io_counters(pernic=True)
        os.getloadavg()
    cpu = time.process_time() - cpu0
    return {"iterations": iterations, "cpu_ms_per_sample": round(cpu / iterations * 1000, 3)}


async def sampler_mode(args: argparse.Namespace, containers: list[Any]) -> bool:
    """The in-process sampler's figures and their baselines; True when the targets are met."""
    client = docker.from_env(timeout=60)
    runtime = DockerRuntime(extra_labels={})
    engine = DockerEngine(runtime, asyncio.get_running_loop())
    results: dict[str, Any] = {}
    try:
        running = len(client.containers.list())
        log(f"{running} containers running on the host (all are sampled)")
        log(f"baseline: dockerd CPU with no sampler for {args.idle_window:.0f} s")
        results["dockerd_idle"] = await measure_dockerd_idle(args.idle_window)
        with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
            log(f"sampler at 1 s for {args.fast_window:.0f} s")
            results["fast"] = await measure_sampler(engine, 1.0, args.fast_window, Path(tmp) / "a")
            log(f"sampler at 15 s (default) for {args.default_window:.0f} s")
            results["default"] = await measure_sampler(
                engine, 15.0, args.default_window, Path(tmp) / "b"
            )
        log(f"baseline: docker SDK stats(stream=False) on {args.stats_calls} containers")
        results["stats_baseline"] = await asyncio.to_thread(
            measure_stats_calls, containers, args.stats_calls
        )
        results["psutil_baseline"] = measure_bare_psutil(2000)
    finally:
        client.close()
        await runtime.close()

    fast, default = results["fast"], results["default"]
    stats, bare = results["stats_baseline"], results["psutil_baseline"]
    idle = results["dockerd_idle"]
    print("\nsampler in-process (MonitoringFeature only, no link, no other features)")
    print(f"{'figure':<46} {'value':>12}")
    rows = [
        ("containers sampled", default["containers_in_sample"]),
        ("CPU per sample, 1 s interval (ms)", fast["cpu_ms_per_sample"]),
        ("CPU per sample, 15 s interval (ms)", default["cpu_ms_per_sample"]),
        ("CPU % of one core at 1 s", fast["cpu_percent_one_core"]),
        (
            f"CPU % of one core at 15 s (target < {TARGET_CPU_PERCENT:g})",
            default["cpu_percent_one_core"],
        ),
        ("dockerd CPU % while sampling at 15 s", default["dockerd_cpu_percent_one_core"]),
        ("dockerd CPU % while sampling at 1 s", fast["dockerd_cpu_percent_one_core"]),
        ("baseline: dockerd CPU % with no sampler", idle["dockerd_cpu_percent_one_core"]),
        # In --mode both this process also served the coordinator: its RSS is not the sampler's.
        (
            f"bench process RSS MiB (target < {TARGET_RSS_MIB:g})"
            if args.mode == "sampler"
            else "bench process RSS MiB (includes the coordinator)",
            default["rss_mib"],
        ),
        ("baseline: bare psutil host loop, CPU ms/sample", bare["cpu_ms_per_sample"]),
        ("baseline: stats(stream=False) wall s/container", stats["wall_s_per_container"]),
        (
            "baseline: ... x20 containers, wall s/sample",
            stats["extrapolated_wall_s_per_sample_of_20"],
        ),
        (
            "ratio: sampler CPU vs bare psutil (x)",
            round(default["cpu_ms_per_sample"] / max(bare["cpu_ms_per_sample"], 1e-6), 1),
        ),
    ]
    for name, value in rows:
        print(f"{name:<46} {value!s:>12}")
    for name, value in results.items():
        print(json.dumps({"result": name, **value}))
    met = default["cpu_percent_one_core"] < TARGET_CPU_PERCENT and (
        args.mode != "sampler" or default["rss_mib"] < TARGET_RSS_MIB
    )
    print(json.dumps({"sampler_targets_met": met}))
    return bool(met)


def process_memory(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon, RssFile (status) and Pss (smaps_rollup) of ``pid``, in MiB."""
    figures: dict[str, float] = {}
    wanted = {"VmRSS": "rss_mib", "RssAnon": "rss_anon_mib", "RssFile": "rss_file_mib"}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            figures[wanted[key]] = round(int(value.split()[0]) / 1024, 1)
        if key == "Threads":
            figures["threads"] = int(value)
    rollup = Path(f"/proc/{pid}/smaps_rollup")
    if rollup.exists():
        match = re.search(r"^Pss:\s+(\d+) kB", rollup.read_text(), re.MULTILINE)
        if match:
            figures["pss_mib"] = round(int(match.group(1)) / 1024, 1)
    return figures


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid`` (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def import_floor(code: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Memory of a python process that ran ``code`` and nothing else (a baseline), with the
    agent's extra environment ``env`` (so the floor is measured as the agent runs)."""
    probe = (
        f"{code}\nimport sys\nsys.stdout.write(open('/proc/self/status').read())\n"
        "sys.stdout.write(open('/proc/self/smaps_rollup').read())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
    ).stdout
    figures: dict[str, float] = {}
    for key, name in (
        ("VmRSS", "rss_mib"),
        ("RssAnon", "rss_anon_mib"),
        ("RssFile", "rss_file_mib"),
        ("Pss", "pss_mib"),
    ):
        match = re.search(rf"^{key}:\s+(\d+) kB", out, re.MULTILINE)
        if match:
            figures[name] = round(int(match.group(1)) / 1024, 1)
    return figures


# What a running agent has imported before it does any work: the CLI, the daemon and every
# feature's builder (the daemon imports them when it starts), on the lean wire layer as
# ``python -m agent`` selects it.
AGENT_IMPORTS = "from shared import wire_mode; wire_mode.use_lean(); import agent.cli, agent.daemon"
# The environment the packaged agent runs with (packaging/systemd/berth-agent.service):
# ``--agent-env`` adds to it or overrides it (PYTHONOPTIMIZE=0 measures the agent without).
PACKAGED_ENV = {"PYTHONOPTIMIZE": "2"}


class BenchAgent:
    """One ``python -m agent run`` subprocess at a given sample interval (INFO logs)."""

    def __init__(
        self,
        state_dir: Path,
        interval: float,
        extra_env: dict[str, str] | None = None,
        run_id: str = "",
    ) -> None:
        self.state_dir = state_dir
        self.env = {
            **os.environ,
            # Every container the agent deploys carries the bench label: removed at the end.
            "BERTH_AGENT_EXTRA_LABELS": f"{BENCH_LABEL}={run_id}",
            "BERTH_AGENT_SAMPLE_SECONDS": str(interval),
            "BERTH_AGENT_RECONNECT_BASE_SECONDS": "0.05",
            "BERTH_AGENT_RECONNECT_MAX_SECONDS": "0.5",
            # Never touch a Caddy this bench did not start (port 9 is discard: closed).
            "BERTH_AGENT_EDGE_ADMIN_URL": "http://127.0.0.1:9",
            **(extra_env or {}),
        }
        self.process: asyncio.subprocess.Process | None = None

    async def enroll(self, url: str, join_token: str) -> None:
        """``berth-agent enroll`` into the state dir."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agent",
            "enroll",
            "--coordinator",
            url,
            "--token",
            join_token,
            "--state-dir",
            str(self.state_dir),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
        )
        async with asyncio.timeout(60):
            out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"enroll failed: {out.decode()}")

    async def start(self) -> int:
        """Start the daemon; return its pid (python itself, no wrapper process)."""
        log_file = (self.state_dir.parent / f"{self.state_dir.name}.log").open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "agent",
                "run",
                "--state-dir",
                str(self.state_dir),
                stdout=log_file,
                stderr=log_file,
                env=self.env,
            )
        finally:
            log_file.close()
        return self.process.pid

    async def stop(self) -> None:
        """SIGTERM, then kill if it lingers."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            async with asyncio.timeout(15):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class Fleet:
    """``count`` resources of one project on the bench server, deployed through the agent."""

    def __init__(self, coordinator: "Coordinator", token: str, server_id: str) -> None:
        self.coordinator = coordinator
        self.token = token
        self.server_id = server_id
        self.project_id = ""
        self.environment_id = ""
        self.resource_ids: list[str] = []

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """Call the API as the admin; raise on a non-2xx answer.

        A 429 (the coordinator's rate limit, hit while polling 20 deployments) is waited out
        for the seconds it names, as a client should, instead of failing the run.
        """
        while True:
            status, answer, _ = await self.coordinator.call(
                method, path, token=self.token, json=body
            )
            if status != 429:
                break
            await asyncio.sleep(float(answer["error"]["details"].get("retryAfterSeconds", 1)))
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

    async def create(self, count: int) -> None:
        """The project, its environment and ``count`` resources, configured."""
        self.project_id = (await self.call("POST", "/projects", {"name": "bench"}))["id"]
        self.environment_id = (
            await self.call(
                "POST", "/environments", {"projectId": self.project_id, "name": "production"}
            )
        )["id"]
        for index in range(count):
            resource = await self.call(
                "POST",
                "/resources",
                {
                    "projectId": self.project_id,
                    "environmentId": self.environment_id,
                    "name": f"idle-{index:02}",
                },
            )
            path = f"/resources/{resource['id']}"
            source = {
                "kind": "docker-image",
                "imageName": IMAGE.split(":")[0],
                "imageTag": "latest",
            }
            await self.call("POST", f"{path}/source", {"source": source})
            await self.call(
                "POST",
                f"{path}/network-profile",
                {"networkProfile": {"internalPort": 8080, "exposureMode": "none"}},
            )
            await self.call(
                "POST",
                f"{path}/runtime-profile",
                {"runtimeProfile": {"startCommand": IDLE_COMMAND}},
            )
            await self.call("POST", f"{path}/health-policy", {"healthCheck": {"enabled": False}})
            self.resource_ids.append(str(resource["id"]))

    async def deploy_all(self) -> dict[str, Any]:
        """Deploy every resource (all queued at once); wait until each succeeded."""
        from tests.harness import eventually

        started = time.monotonic()
        deployments = [
            str(
                (
                    await self.call(
                        "POST",
                        "/deployments",
                        {
                            "projectId": self.project_id,
                            "environmentId": self.environment_id,
                            "resourceId": resource_id,
                            "serverId": self.server_id,
                        },
                    )
                )["id"]
            )
            for resource_id in self.resource_ids
        ]
        statuses: dict[str, str] = {}

        async def all_ended() -> bool:
            for deployment_id in deployments:
                if statuses.get(deployment_id) not in TERMINAL:
                    shown = await self.call("GET", f"/deployments/{deployment_id}")
                    statuses[deployment_id] = str(shown["deployment"]["status"])
            return all(status in TERMINAL for status in statuses.values())

        await eventually(all_ended, timeout=60 + 10 * len(deployments), what="the deployments")
        failed = {d: s for d, s in statuses.items() if s != "succeeded"}
        if failed:
            raise RuntimeError(f"deployments did not succeed: {failed}")
        return {
            "deployments": len(deployments),
            "deploy_wall_s": round(time.monotonic() - started, 1),
        }


async def stored_samples(
    coordinator: "Coordinator", token: str, server_id: str, since: datetime
) -> list[dict[str, Any]]:
    """Samples the coordinator stored for the server, observed at or after ``since``."""
    status, body, _ = await coordinator.call(
        "GET",
        f"/runtime-monitoring/samples?scopeKind=server&serverId={server_id}&limit=720",
        token=token,
    )
    if status != 200:
        raise RuntimeError(f"samples read failed: {status} {body}")
    return [
        sample
        for sample in body["samples"]
        if datetime.fromisoformat(sample["observedAt"]) >= since
    ]


async def measure_agent(
    coordinator: "Coordinator",
    token: str,
    server_id: str,
    state_dir: Path,
    interval: float,
    window: float,
    extra_env: dict[str, str],
    run_id: str,
    fleet: Fleet | None,
) -> dict[str, Any]:
    """Run the real agent at ``interval``: warm-up to a stored sample, the deployments of
    ``fleet`` through it (when given), then ``window`` s."""
    from tests.harness import eventually

    agent = BenchAgent(state_dir, interval, extra_env, run_id)
    deployed: dict[str, Any] = {"deployments": 0, "deploy_wall_s": None}
    pid = await agent.start()
    try:
        started = datetime.now(UTC)

        async def warmed_up() -> bool:
            return bool(await stored_samples(coordinator, token, server_id, started))

        # Priming, connecting, the first /system/df and the first sample are one-off costs.
        await eventually(warmed_up, timeout=max(60.0, interval * 3), what="a first sample")
        if fleet is not None:
            log(f"deploying {len(fleet.resource_ids)} resources through the agent")
            deployed = await fleet.deploy_all()
            log(f"deployed in {deployed['deploy_wall_s']} s")
        since, cpu0, wall0 = datetime.now(UTC), process_cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(window)
        cpu, wall = process_cpu_seconds(pid) - cpu0, time.monotonic() - wall0
        memory = process_memory(pid)
        samples = await stored_samples(coordinator, token, server_id, since)
    finally:
        await agent.stop()
    return {
        "interval_s": interval,
        "window_s": round(wall, 1),
        "samples": len(samples),
        "cpu_ms_per_sample": round(cpu / max(len(samples), 1) * 1000, 2),
        "cpu_percent_one_core": round(cpu / wall * 100, 3),
        **deployed,
        **memory,
    }


async def agent_mode(args: argparse.Namespace, client: docker.DockerClient, run_id: str) -> bool:
    """The real agent's figures and the import baselines; True when the targets are met."""
    from tests.harness import Coordinator

    results: dict[str, Any] = {}
    extra_env = {**PACKAGED_ENV, **dict(item.split("=", 1) for item in args.agent_env)}
    log(f"baselines: bare python, and python importing the agent's modules ({extra_env})")
    results["bare_python"] = await asyncio.to_thread(import_floor, "pass")
    results["agent_imports"] = await asyncio.to_thread(import_floor, AGENT_IMPORTS, extra_env)
    with tempfile.TemporaryDirectory(prefix="berth-bench-agent-") as tmp:
        coordinator = Coordinator(
            Path(tmp) / "coordinator",
            None,
            rate_limit_token_per_minute=0,  # measure, not limit
        )
        await coordinator.start()
        try:
            token = await coordinator.bootstrap()
            server = await coordinator.add_server(token, "bench-node")
            state_dir = Path(tmp) / "agent"
            await BenchAgent(state_dir, 15.0).enroll(coordinator.url, server["joinToken"])
            fleet = None
            if not args.no_deploy:
                fleet = Fleet(coordinator, token, server["id"])
                await fleet.create(args.containers)
            log(f"real agent at 15 s (default) for {args.default_window:.0f} s")
            results["agent_default"] = await measure_agent(
                coordinator,
                token,
                server["id"],
                state_dir,
                15.0,
                args.default_window,
                extra_env,
                run_id,
                fleet,
            )
            managed = client.containers.list(filters={"label": "berth.managed=true"})
            results["managed_containers"] = len(managed)
            log(f"real agent at 1 s for {args.fast_window:.0f} s")
            results["agent_fast"] = await measure_agent(
                coordinator,
                token,
                server["id"],
                state_dir,
                1.0,
                args.fast_window,
                extra_env,
                run_id,
                fleet,
            )
        finally:
            await coordinator.close()

    default, fast = results["agent_default"], results["agent_fast"]
    bare, floor = results["bare_python"], results["agent_imports"]
    print("real agent process (python -m agent run, all features, linked to a coordinator)")
    print(f"{'figure':<50} {'value':>12}")
    rows: list[tuple[str, Any]] = [
        ("managed containers running (berth.managed=true)", results["managed_containers"]),
        ("deployments by the agent before the 15 s window", default["deployments"]),
        ("  their wall time, all queued at once (s)", default["deploy_wall_s"]),
        ("redeployments by the agent before the 1 s window", fast["deployments"]),
        ("samples stored in the 15 s window", default["samples"]),
        ("CPU per sample, 15 s interval (ms)", default["cpu_ms_per_sample"]),
        (
            f"CPU % of one core at 15 s (target < {TARGET_AGENT_CPU_PERCENT:g})",
            default["cpu_percent_one_core"],
        ),
        ("samples stored in the 1 s window", fast["samples"]),
        ("CPU per sample, 1 s interval (ms)", fast["cpu_ms_per_sample"]),
        ("CPU % of one core at 1 s", fast["cpu_percent_one_core"]),
        (
            f"VmRSS MiB after the 15 s window (target <= {TARGET_AGENT_RSS_MIB:g})",
            default["rss_mib"],
        ),
        ("  of which RssAnon MiB (private heap)", default.get("rss_anon_mib")),
        ("  of which RssFile MiB (mapped libraries)", default.get("rss_file_mib")),
        ("  PSS MiB (shared pages split)", default.get("pss_mib")),
        (f"  threads (target <= {TARGET_AGENT_THREADS})", default.get("threads")),
        ("VmRSS MiB after the 1 s window", fast["rss_mib"]),
        ("baseline: bare python VmRSS MiB", bare.get("rss_mib")),
        ("baseline: python importing the agent VmRSS MiB", floor.get("rss_mib")),
        ("  of which RssAnon MiB", floor.get("rss_anon_mib")),
        ("  of which RssFile MiB", floor.get("rss_file_mib")),
        (
            "ratio: agent VmRSS vs its import floor (x)",
            round(default["rss_mib"] / max(floor.get("rss_mib", 1.0), 1e-6), 2),
        ),
    ]
    for name, value in rows:
        print(f"{name:<50} {value!s:>12}")
    for name, value in results.items():
        if isinstance(value, dict):
            print(json.dumps({"result": name, **value}))
    met = bool(
        default["cpu_percent_one_core"] < TARGET_AGENT_CPU_PERCENT
        and default["rss_mib"] <= TARGET_AGENT_RSS_MIB
        and int(default.get("threads") or 0) <= TARGET_AGENT_THREADS
    )
    print(json.dumps({"agent_targets_met": met}))
    return met


def bench_containers(client: docker.DockerClient, run_id: str) -> list[Any]:
    """Every container of this run, in any state: started here or deployed by the agent."""
    return list(client.containers.list(all=True, filters={"label": f"{BENCH_LABEL}={run_id}"}))


async def main(args: argparse.Namespace) -> int:
    client = docker.from_env(timeout=60)
    run_id = uuid.uuid4().hex[:10]
    deploy = args.mode in ("agent", "both") and not args.no_deploy
    if not deploy:
        log(f"starting {args.containers} idle containers (label {BENCH_LABEL}={run_id})")
        start_containers(client, args.containers, run_id)
    try:
        log(f"{len(client.containers.list())} containers running on the host (all are sampled)")
        met = True
        if args.mode in ("agent", "both"):
            met = await agent_mode(args, client, run_id) and met
        if args.mode in ("sampler", "both"):
            met = await sampler_mode(args, bench_containers(client, run_id)) and met
    finally:
        log("removing the containers")
        for container in bench_containers(client, run_id):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        client.close()
    print(json.dumps({"targets_met": met}))
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mode", choices=("agent", "sampler", "both"), default="both")
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--default-window", type=float, default=120.0, help="seconds at 15 s")
    parser.add_argument("--fast-window", type=float, default=30.0, help="seconds at 1 s")
    parser.add_argument(
        "--agent-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the agent process (e.g. MALLOC_ARENA_MAX=2), repeatable",
    )
    parser.add_argument(
        "--no-deploy",
        action="store_true",
        help="start the containers directly: the agent only samples them (the old measure)",
    )
    parser.add_argument("--stats-calls", type=int, default=3)
    parser.add_argument("--idle-window", type=float, default=30.0, help="dockerd baseline")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
