"""Agent monitoring cost: CPU per sample, CPU % of one core and RSS with 20 running containers.

The sampler runs in-process (the real ``MonitoringFeature``: sampling loop, cgroup reads,
spool writes in SQLite, Docker list/inspect/df), without a coordinator link, so the figures
are the monitoring feature's own cost and not the websocket's or the deployment manager's.
Process CPU time counts every thread (the reads run in worker threads). The Docker engine's
own CPU for the list calls is measured separately from dockerd's process counters.

Baselines measured in the same run:
- docker SDK ``container.stats(stream=False)`` for a few of the same containers (the per-
  container call the sampler avoids: the engine waits for two stat cycles, about 1-2 s each);
- a bare psutil loop of the host-only figures (CPU times, memory, disk, network), the floor.

    .venv/bin/python bench/agent_cost.py [--containers 20] [--default-window 90] [--fast-window 30]
"""

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import psutil

from agent.monitoring.engine import DockerEngine
from agent.monitoring.feature import MonitoringFeature
from agent.monitoring.spool import Spool, spool_bound
from agent.runtime.docker import DockerRuntime

MIB = 1024 * 1024
IMAGE = "berth-test/busybox:latest"
BENCH_LABEL = "berth.bench"
TARGET_CPU_PERCENT = 1.0
TARGET_RSS_MIB = 60.0


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


async def main(args: argparse.Namespace) -> int:
    client = docker.from_env(timeout=60)
    run_id = uuid.uuid4().hex[:10]
    runtime = DockerRuntime(extra_labels={})
    engine = DockerEngine(runtime.api_client)
    log(f"starting {args.containers} idle containers (label {BENCH_LABEL}={run_id})")
    containers = start_containers(client, args.containers, run_id)
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
        log("removing the containers")
        for container in containers:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        client.close()
        await runtime.close()

    fast, default = results["fast"], results["default"]
    stats, bare = results["stats_baseline"], results["psutil_baseline"]
    idle = results["dockerd_idle"]
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
        (f"RSS MiB (target < {TARGET_RSS_MIB:g})", default["rss_mib"]),
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
    met = (
        default["cpu_percent_one_core"] < TARGET_CPU_PERCENT and default["rss_mib"] < TARGET_RSS_MIB
    )
    print(json.dumps({"targets_met": met}))
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--default-window", type=float, default=90.0, help="seconds at 15 s")
    parser.add_argument("--fast-window", type=float, default=30.0, help="seconds at 1 s")
    parser.add_argument("--stats-calls", type=int, default=3)
    parser.add_argument("--idle-window", type=float, default=30.0, help="dockerd baseline")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
