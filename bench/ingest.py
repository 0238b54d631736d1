"""Sample ingest benchmark: simulated agents send real ``samples`` frames over real websockets to
one coordinator process and wait for each ``samples_ack``, like the real agent.

Prints: samples stored per second over a measurement window, ack latency p50/p99, and the
latency of ``GET /runtime-monitoring/rollup?bucket=hour`` over 7 days of pre-seeded rollups for
100 servers, measured while the ingest runs. Baseline, same run and same database: a raw
``bulk_create`` of the same rows without the websocket, validation and batching path.
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import multiprocessing.sharedctypes as mp_shared
import multiprocessing.synchronize as mp_sync
import os
import queue
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil
from fanin import (
    HOST,
    READY_TIMEOUT,
    UNLIMITED,
    ServerProcess,
    WorkerSpec,
    _dial,
    _percentile,
    bootstrap,
    free_port,
    log,
    pin_to,
    raise_nofile_limit,
    register_agents,
    wait_http_ready,
)
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from coordinator.db import database
from coordinator.db.monitoring_models import RuntimeSample, SampleRollup
from coordinator.monitoring.metrics import floor_time
from shared.messages.monitoring import Sample, new_sample_id
from shared.version import AGENT_CONNECT_PATH

ACK_TIMEOUT = 30.0
ROLLUP_TIMEOUT = 60.0
LINK_TIMEOUT = 600.0  # seconds for every agent to link before the warm-up starts
# The coordinator's CLI with threshold evaluation switched off (``--without-thresholds``).
WITHOUT_THRESHOLDS = (
    "import sys; import coordinator.monitoring.thresholds as t; "
    "t.install = lambda app, service: None; "
    "from coordinator.cli import main; sys.argv[0] = 'berth-coordinator'; main()"
)
SEED_SERVERS = 100
SEED_DAYS = 7
CONTAINERS_PER_SAMPLE = 5


def sample_template() -> dict[str, Any]:
    """One realistic sample (every signal, two mounts, five containers) as wire JSON."""
    containers = [
        {
            "containerId": f"{i:064x}",
            "name": f"app-{i}",
            "projectId": "prj_bench",
            "environmentId": "env_bench",
            "resourceId": f"res_bench{i}",
            "deploymentId": f"dep_bench{i}",
            "cpuPercent": 12.5,
            "memoryBytes": 50_000_000,
            "memoryLimitBytes": 500_000_000,
            "rxBytes": 1200,
            "txBytes": 800,
            "blockReadBytes": 4096,
            "blockWriteBytes": 8192,
            "writableBytes": 1_000_000,
            "pids": 4,
        }
        for i in range(CONTAINERS_PER_SAMPLE)
    ]
    mount = {
        "path": "/",
        "device": "/dev/sda1",
        "fstype": "ext4",
        "totalBytes": 100_000_000_000,
        "usedBytes": 40_000_000_000,
        "availableBytes": 60_000_000_000,
        "inodesTotal": 6_000_000,
        "inodesUsed": 400_000,
        "inodesAvailable": 5_600_000,
    }
    sample = Sample.model_validate(
        {
            "sampleId": new_sample_id(),
            "sequence": 1,
            "observedAt": datetime.now(UTC),
            "intervalSeconds": 5.0,
            "totals": {
                "cpu": {
                    "logical_cores": 2,
                    "load_average1m": 0.4,
                    "load_average5m": 0.3,
                    "load_average15m": 0.2,
                    "busyPercent": 21.0,
                    "containerCpuPercent": 62.5,
                },
                "memory": {
                    "totalBytes": 4_000_000_000,
                    "usedBytes": 1_500_000_000,
                    "availableBytes": 2_500_000_000,
                    "containerUsedBytes": 250_000_000,
                },
                "disk": {
                    "totalBytes": 100_000_000_000,
                    "usedBytes": 40_000_000_000,
                    "availableBytes": 60_000_000_000,
                    "attributedBytes": 5_000_000,
                },
                "inode": {"total": 6_000_000, "used": 400_000, "available": 5_600_000},
                "docker": {
                    "imageBytes": 2_000_000_000,
                    "buildCacheBytes": 0,
                    "containerWritableBytes": 5_000_000,
                },
                "network": {"rxBytes": 6000, "txBytes": 4000},
            },
            "mounts": [mount, {**mount, "path": "/var/lib/docker"}],
            "containers": containers,
        }
    )
    return sample.model_dump(mode="json", by_alias=True)


# ---- load processes -------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestSpec:
    """One load process's slice of the agents and the send period."""

    index: int
    url: str
    agents: list[tuple[str, bytes]]
    interval: float
    cpus: list[int]


async def _agent(
    spec: IngestSpec,
    server_id: str,
    raw_key: bytes,
    template: dict[str, Any],
    stored: Any,
    linked: Any,
    latencies: list[tuple[float, float]],
    counters: dict[str, int],
    gate: asyncio.Semaphore,
) -> None:
    dial = WorkerSpec(0, "berth", spec.url, [], 1, [], 0, ping_interval=None)
    link: ClientConnection
    async with gate:  # bounded dials in flight, as a fleet reconnecting after a restart would
        link, _ = await _dial(dial, server_id, raw_key)
    with linked.get_lock():
        linked.value += 1
    rng = random.Random(server_id)
    spool: list[dict[str, Any]] = []  # undelivered samples, oldest first, like the agent's
    sampled = asyncio.Event()

    async def sample_forever() -> None:
        # Sampling runs on its own clock, whatever the delivery does (as in the real agent).
        sequence = 0
        next_at = time.monotonic() + rng.uniform(0, spec.interval)
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += spec.interval
            sequence += 1
            spool.append(
                {
                    **template,
                    "sampleId": new_sample_id(),  # as the agent makes them
                    "sequence": sequence,
                    "observedAt": datetime.now(UTC).isoformat(),
                }
            )
            sampled.set()

    frame_id = 1
    sampler = asyncio.create_task(sample_forever())
    try:
        while True:
            if not spool:
                sampled.clear()
                _ = await sampled.wait()
            frame_id += 1
            batch = spool[:50]
            sent_at = time.perf_counter()
            frame = {"type": "samples", "id": frame_id, "samples": batch}
            await link.send(orjson.dumps(frame).decode())  # text frames: berth.v1 is JSON text
            async with asyncio.timeout(ACK_TIMEOUT):
                while True:
                    reply = orjson.loads(await link.recv())
                    if reply.get("re") == frame_id:
                        break
            if reply["type"] == "samples_ack":
                latencies.append((time.monotonic(), time.perf_counter() - sent_at))
                del spool[: len(batch)]
                stored.value += int(reply["stored"])
            else:
                counters["refused"] += 1  # retriable error: the spool keeps the samples
                await asyncio.sleep(1.0)
    except (ConnectionClosed, TimeoutError):
        counters["dropped"] += 1
    finally:
        with linked.get_lock():
            linked.value -= 1
        sampler.cancel()
        await link.close()


async def _load(
    spec: IngestSpec, stored: Any, linked: Any, stop: mp_sync.Event, results: Any
) -> None:
    template = sample_template()
    latencies: list[tuple[float, float]] = []
    counters = {"refused": 0, "dropped": 0}
    gate = asyncio.Semaphore(100)
    tasks = [
        asyncio.create_task(
            _agent(spec, sid, key, template, stored, linked, latencies, counters, gate)
        )
        for sid, key in spec.agents
    ]
    await asyncio.to_thread(stop.wait)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    results.put((spec.index, latencies, counters))


def load_entry(
    spec: IngestSpec, stored: Any, linked: Any, stop: mp_sync.Event, results: Any
) -> None:
    """A load process: pin, then run its agents until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pin_to(spec.cpus)
    raise_nofile_limit()
    asyncio.run(_load(spec, stored, linked, stop, results))


def _cpu_seconds(procs: list[Any]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error, TypeError):
            times = psutil.Process(proc.pid).cpu_times()
            total += times.user + times.system
    return total


# ---- seeding and baseline -------------------------------------------------------------------


async def seed_rollups(database_url: str, server_ids: list[str]) -> tuple[int, float]:
    """Write 7 days of hour and five-minute server rollups for ``server_ids``; (rows, seconds)."""
    started = time.perf_counter()
    end = floor_time(datetime.now(UTC), "hour")
    sums = {
        "cpu.busyPercent": 600.0,
        "cpu.containerCpuPercent": 1800.0,
        "cpu.logicalCores": 24.0,
        "cpu.loadAverage1m": 6.0,
        "memory.usedBytes": 1.8e10,
        "memory.totalBytes": 4.8e10,
        "network.rxBytes": 72000.0,
        "network.txBytes": 48000.0,
        "disk.usedBytes": 4.8e11,
    }
    rows = 0
    async with database(database_url):
        for bucket, step, per_bucket in (("hour", 3600, 720), ("five-minute", 300, 60)):
            count = SEED_DAYS * 86400 // step
            batch: list[SampleRollup] = []
            for server_id in server_ids:
                for i in range(count):
                    scale = per_bucket / 12
                    batch.append(
                        SampleRollup(
                            bucket=bucket,
                            bucket_start=end - timedelta(seconds=step * (i + 1)),
                            scope_kind="server",
                            scope_id=server_id,
                            server_id=server_id,
                            sample_count=per_bucket,
                            sums={k: v * scale for k, v in sums.items()},
                            maxima={k: v / 12 for k, v in sums.items()},
                        )
                    )
                    if len(batch) >= 2000:
                        await SampleRollup.bulk_create(batch)
                        rows += len(batch)
                        batch = []
            if batch:
                await SampleRollup.bulk_create(batch)
                rows += len(batch)
    return rows, time.perf_counter() - started


async def baseline_insert(database_url: str, server_ids: list[str], count: int) -> float:
    """Rows/s of a raw ``bulk_create`` (1000 a transaction) of the same sample rows."""
    template = sample_template()
    totals, mounts, containers = template["totals"], template["mounts"], template["containers"]
    now = datetime.now(UTC)
    async with database(database_url):
        started = time.perf_counter()
        for offset in range(0, count, 1000):
            rows = [
                RuntimeSample(
                    sample_id=new_sample_id(),
                    server_id=server_ids[i % len(server_ids)],
                    sequence=i + 1,
                    observed_at=now,
                    received_at=now,
                    interval_seconds=5.0,
                    totals=totals,
                    mounts=mounts,
                    containers=containers,
                    warnings=[],
                )
                for i in range(offset, min(count, offset + 1000))
            ]
            await RuntimeSample.bulk_create(rows)
        return count / (time.perf_counter() - started)


async def rollup_latencies(
    base: str, token: str, server_ids: list[str], until: float
) -> dict[str, list[float]]:
    """Query hour rollups over 7 days (all servers, and one server at a time) until ``until``."""
    found: dict[str, list[float]] = {"all": [], "server": [], "timeouts": []}
    frm = (datetime.now(UTC) - timedelta(days=SEED_DAYS)).isoformat()
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(1)
    body = b""
    timeout = aiohttp.ClientTimeout(total=ROLLUP_TIMEOUT)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
        while time.monotonic() < until:
            for kind in ("all", "server"):
                params = {"bucket": "hour", "scope.kind": kind, "window.from": frm}
                if kind == "server":
                    params["scope.serverId"] = rng.choice(server_ids)
                started = time.perf_counter()
                try:
                    async with http.get(f"{base}/runtime-monitoring/rollup", params=params) as resp:
                        body = await resp.read()
                        if resp.status != 200:
                            raise RuntimeError(f"rollup: HTTP {resp.status} {body[:300]!r}")
                except TimeoutError:
                    found["timeouts"].append(ROLLUP_TIMEOUT)
                    log(f"a {kind} rollup query got no answer in {ROLLUP_TIMEOUT:g} s")
                    continue
                found[kind].append(time.perf_counter() - started)
            await asyncio.sleep(0.2)
        if body:
            points = len(orjson.loads(body)["series"][0]["points"])
            log(f"last rollup answer: {points} hour points, {len(body)} bytes")
    return found


# ---- the run --------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus, load_cpus = (cpus[:1], cpus[1:]) if len(cpus) > 1 else (cpus, cpus)
    port = free_port()
    base = f"http://{HOST}:{port}"
    database_url = args.database_url or f"sqlite://{workdir / 'coordinator' / 'berth.sqlite3'}"
    env_url = {"BERTH_DATABASE_URL": database_url} if args.database_url else {}
    os.environ.update(env_url)
    cmd = [sys.executable, "-m", "coordinator", "serve"]
    if args.without_thresholds:  # experiment: the ingest path alone, no threshold observer
        cmd = [sys.executable, "-c", WITHOUT_THRESHOLDS, "serve"]
    if args.gc_threshold or args.switch_interval:  # experiment: interpreter settings
        setup = "import gc, sys; "
        if args.gc_threshold:
            setup += f"gc.set_threshold({int(args.gc_threshold)}, 10, 10); "
        if args.switch_interval:
            setup += f"sys.setswitchinterval({float(args.switch_interval)!r}); "
        setup += "from coordinator.cli import main; sys.argv[0] = 'berth-coordinator'; main()"
        cmd = [sys.executable, "-c", setup, "serve"]
    if args.profile and cmd[1] == "-c":
        raise SystemExit("--profile runs the plain coordinator; drop the experiment options")
    if args.profile:  # cProfile of the whole coordinator, written when it stops (SIGTERM)
        cmd[1:1] = ["-m", "cProfile", "-o", str(Path(args.profile).resolve())]
    cmd += ["--data-dir", str(workdir / "coordinator")]
    cmd += ["--listen", f"{HOST}:{port}", "--log-level", "WARNING", *UNLIMITED]
    server = ServerProcess("coordinator", cmd, server_cpus, workdir / "coordinator.log")
    figures: dict[str, Any] = {
        "agents": args.agents,
        "interval_s": args.interval,
        "offered_samples_per_s": round(args.agents / args.interval, 1),
        "database": "postgres" if args.database_url else "sqlite",
        "threshold_observer": not args.without_thresholds,
        "gc_threshold0": args.gc_threshold or "default",
        "switch_interval_s": args.switch_interval or "default",
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }
    try:
        asyncio.run(wait_http_ready(server, f"{base}/bootstrap/auth/status", READY_TIMEOUT))
        token = asyncio.run(bootstrap(base))
        registration = asyncio.run(
            register_agents(base, token, args.agents, 32, deadline_s=120 + args.agents * 0.5)
        )
        agents = registration.agents
        log(f"registered {len(agents)} agents in {registration.seconds:.1f} s")
        seeded = [sid for sid, _ in agents[:SEED_SERVERS]]
        rows, seconds = asyncio.run(seed_rollups(database_url, seeded))
        figures["seeded_rollup_rows"] = rows
        log(f"seeded {rows} rollup rows in {seconds:.1f} s")

        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        results = ctx.Queue()
        workers = max(1, min(args.workers, len(agents)))
        counters: list[mp_shared.Synchronized[int]] = [ctx.Value("q", 0) for _ in range(workers)]
        links: list[mp_shared.Synchronized[int]] = [ctx.Value("q", 0) for _ in range(workers)]
        url = f"ws://{HOST}:{port}{AGENT_CONNECT_PATH}"
        procs = [
            ctx.Process(
                target=load_entry,
                args=(
                    IngestSpec(i, url, agents[i::workers], args.interval, load_cpus),
                    counters[i],
                    links[i],
                    stop,
                    results,
                ),
                daemon=True,
            )
            for i in range(workers)
        ]
        for proc in procs:
            proc.start()
        try:
            # Every agent linked before the warm-up: the window measures a fleet that is
            # connected, not one still joining (10,000 handshakes take a while).
            joined = time.monotonic()
            joined_by = joined + LINK_TIMEOUT
            while sum(v.value for v in links) < len(agents) and time.monotonic() < joined_by:
                time.sleep(0.5)
            figures["seconds_to_link_all"] = round(time.monotonic() - joined, 1)
            time.sleep(args.warmup)
            figures["links_at_window_start"] = sum(v.value for v in links)
            cpu_before = server.cpu_seconds()
            load_before = _cpu_seconds(procs)
            stored_before = sum(c.value for c in counters)
            window_start = time.monotonic()
            until = window_start + args.window
            latencies = asyncio.run(rollup_latencies(base, token, seeded, until))
            elapsed = time.monotonic() - window_start
            stored_after = sum(c.value for c in counters)
            figures["links_at_window_end"] = sum(v.value for v in links)
            cpu_after = server.cpu_seconds()
            load_after = _cpu_seconds(procs)
        finally:
            stop.set()
            reports: list[tuple[int, list[tuple[float, float]], dict[str, int]]] = []
            deadline = time.monotonic() + 60
            while len(reports) < workers and time.monotonic() < deadline:
                with contextlib.suppress(queue.Empty):
                    reports.append(results.get(timeout=1))
            for proc in procs:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
        acks = [lat for _, lats, _ in reports for t, lat in lats if window_start <= t <= until]
        figures.update(
            stored_per_s=round((stored_after - stored_before) / elapsed, 1),
            coordinator_cpu_percent=round(100 * (cpu_after - cpu_before) / elapsed, 1),
            load_processes_cpu_percent=round(100 * (load_after - load_before) / elapsed, 1),
            ack_p50_ms=round(1000 * _percentile(acks, 0.5), 1),
            ack_p99_ms=round(1000 * _percentile(acks, 0.99), 1),
            acks_in_window=len(acks),
            refused_batches=sum(c["refused"] for _, _, c in reports),
            dropped_links=sum(c["dropped"] for _, _, c in reports),
        )
        figures["rollup_queries_timed_out"] = len(latencies.pop("timeouts"))
        for kind, values in latencies.items():
            # The first query of a kind fills the read cache (a week of points computed from
            # rows); it is reported on its own, and the percentiles are of the queries after it.
            first, rest = (values[0], values[1:]) if values else (0.0, [])
            figures[f"rollup_{kind}_first_query_ms"] = round(1000 * first, 1)
            figures[f"rollup_{kind}_7d_hour_p50_ms"] = round(1000 * _percentile(rest, 0.5), 1)
            figures[f"rollup_{kind}_7d_hour_p99_ms"] = round(1000 * _percentile(rest, 0.99), 1)
            figures[f"rollup_{kind}_7d_hour_max_ms"] = round(1000 * max(rest, default=0.0), 1)
            figures[f"rollup_{kind}_queries"] = len(rest)
    finally:
        warnings = server.warnings()
        server.stop()
        figures["coordinator_warning_lines"] = len(warnings)
        if warnings:
            log(f"coordinator warnings, e.g. {warnings[:3]}")
    rate = asyncio.run(baseline_insert(database_url, seeded, args.baseline_rows))
    figures["baseline_bulk_insert_rows_per_s"] = round(rate, 1)
    figures["ratio_stored_to_baseline"] = round(figures["stored_per_s"] / rate, 3) if rate else 0
    return figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=2000, help="simulated agents (default 2000)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--workers", type=int, default=2, help="load processes (default 2)")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=30.0, help="measurement window seconds")
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    parser.add_argument(
        "--database-url", default=None, help="postgres://... (default: SQLite in a temp dir)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument(
        "--without-thresholds",
        action="store_true",
        help="experiment: run the coordinator without the threshold observer",
    )
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=0,
        help="experiment: run the coordinator with gc.set_threshold(N, 10, 10)",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.0,
        help="experiment: run the coordinator with sys.setswitchinterval(S)",
    )
    parser.add_argument(
        "--profile", default=None, help="write a cProfile of the coordinator to this path"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile_limit()
    with tempfile.TemporaryDirectory(prefix="berth-ingest-") as tmp:
        figures = run(args, Path(tmp))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
