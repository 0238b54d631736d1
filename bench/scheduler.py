"""Scheduler benchmark: 10,000 enabled tasks across 1,000 resources.

Measures (1) the scheduler's CPU while nothing is due, (2) how late slots are recorded after
their minute (firing jitter) when 1/60 of the tasks share a minute and when all of them do,
and (3) the start latency of a run end to end (API accepted -> command finished, real agent
and Docker) against a plain ``docker run --rm`` of the same command.

Phases 1-2 run the real scheduler on a real SQLite database in this process, with no agent
connected (runs are recorded, not started); phase 3 runs a real coordinator and agent.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

TASKS = 10_000
RESOURCES = 1_000
IMAGE = "berth-test/busybox"
COMMAND = "echo started"
TARGET_JITTER_P99_S = 1.0
TARGET_OVERHEAD_MS = 150.0


def log(message: str) -> None:
    """Progress goes to stderr so that stdout carries only the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


async def _seed(tasks: int, resources: int) -> None:
    from coordinator.db import models
    from coordinator.db.task_models import ScheduledTask

    now = datetime.now(UTC)
    await models.Deployment.bulk_create(
        [
            models.Deployment(
                id=f"dep_bench{r:06d}", organization_id="org_bench", project_id="prj_bench",
                environment_id="env_bench", resource_id=f"res_bench{r:06d}",
                server_id="srv_bench", status="succeeded", created_at=now,
                artifact={"kind": "image", "image": IMAGE},
            )
            for r in range(resources)
        ],
        batch_size=500,
    )  # fmt: skip
    await ScheduledTask.bulk_create(
        [
            ScheduledTask(
                id=f"tsk_bench{i:06d}", organization_id="org_bench", project_id="prj_bench",
                environment_id="env_bench", resource_id=f"res_bench{i % resources:06d}",
                schedule="0 0 1 1 *", timezone="UTC", command_intent=COMMAND,
                timeout_seconds=60, status="enabled", next_slot_at=now + timedelta(days=300),
                created_at=now, updated_at=now,
            )
            for i in range(tasks)
        ],
        batch_size=500,
    )  # fmt: skip


async def _fire_at_next_minute(tasks: int, every: int) -> dict[str, float]:
    """Make every ``every``-th task due at the next minute; return the recorded lateness."""
    from coordinator.db.task_models import ScheduledTask, ScheduledTaskRun

    now = datetime.now(UTC)
    boundary = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    if (boundary - now).total_seconds() < 5:
        boundary += timedelta(minutes=1)
    chosen = [f"tsk_bench{i:06d}" for i in range(0, tasks, every)]
    for start in range(0, len(chosen), 500):
        await ScheduledTask.filter(id__in=chosen[start : start + 500]).update(
            schedule="* * * * *", next_slot_at=boundary
        )
    log(f"{len(chosen)} tasks due at {boundary:%H:%M:%S}; waiting")
    deadline = time.monotonic() + 60 + (boundary - now).total_seconds()
    while await ScheduledTaskRun.filter(slot_at=boundary).count() < len(chosen):
        if time.monotonic() > deadline:
            raise RuntimeError("the slot's runs were not all recorded within 60 s")
        await asyncio.sleep(0.2)
    rows = await ScheduledTaskRun.filter(slot_at=boundary).values_list("created_at", flat=True)
    late = [(created - boundary).total_seconds() for created in rows]  # type: ignore[operator]
    # Back to "not due" for the next phase; the recorded runs are dropped.
    for start in range(0, len(chosen), 500):
        await ScheduledTask.filter(id__in=chosen[start : start + 500]).update(
            schedule="0 0 1 1 *", next_slot_at=boundary + timedelta(days=300)
        )
    await ScheduledTaskRun.all().delete()
    return {
        "tasks": len(chosen),
        "p50_s": statistics.median(late),
        "p99_s": percentile(late, 99),
        "max_s": max(late),
    }


async def scheduling(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Phases 1 and 2: idle CPU and firing jitter of the real scheduler."""
    from coordinator.db import close_database, open_database
    from coordinator.hub.registry import Registry
    from coordinator.scheduling import TaskScheduler
    from coordinator.secrets import Keyring

    await open_database(f"sqlite://{workdir / 'bench.sqlite3'}")
    try:
        log(f"seeding {args.tasks} tasks across {args.resources} resources")
        await _seed(args.tasks, args.resources)
        scheduler = TaskScheduler(Registry(), Keyring.load_or_create(workdir))
        runner = aiter(scheduler.running())
        await anext(runner)
        try:
            await asyncio.sleep(2)  # first ticks settle
            wall, cpu = time.monotonic(), time.process_time()
            await asyncio.sleep(args.idle_seconds)
            idle = 100 * (time.process_time() - cpu) / (time.monotonic() - wall)
            log(f"idle CPU {idle:.2f} % of one core")
            spread = await _fire_at_next_minute(args.tasks, 60)
            log(f"1/60 due: p99 {spread['p99_s']:.3f} s")
            burst = unplanned = None
            if not args.skip_burst:
                # The baseline first: the same minute with the look-ahead off (rows read at
                # the slot), then as shipped (the slot planned a few seconds before).
                scheduler.plan_ahead = False
                unplanned = await _fire_at_next_minute(args.tasks, 1)
                log(f"all due, not planned ahead: p99 {unplanned['p99_s']:.3f} s")
                scheduler.plan_ahead = True
                burst = await _fire_at_next_minute(args.tasks, 1)
                log(f"all due: p99 {burst['p99_s']:.3f} s")
        finally:
            with contextlib.suppress(StopAsyncIteration):
                await anext(runner)
    finally:
        await close_database()
    return {
        "idle_cpu_percent": idle,
        "jitter_spread": spread,
        "jitter_all_unplanned": unplanned,
        "jitter_all": burst,
    }


async def start_latency(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Phase 3: a one-off run end to end against ``docker run --rm`` of the same command."""
    from tests.harness import Coordinator
    from tests.integration.stacks import deployed_workload

    coordinator = Coordinator(workdir / "coordinator", None)
    await coordinator.start()
    try:
        token = await coordinator.bootstrap()
        stack = await deployed_workload(coordinator, token, workdir / "agent", "sleep 3600")
        try:
            berth: list[float] = []
            steps: list[list[float]] = []
            for _ in range(args.repeat):
                began = time.monotonic()
                accepted = await stack.call(
                    "POST",
                    f"/resources/{stack.resource_id}/one-off-runs",
                    {"commandIntent": COMMAND},
                )
                run_id = accepted["run"]["runId"]

                deadline = time.monotonic() + 60
                while True:
                    shown = (await stack.call("GET", f"/scheduled-task-runs/{run_id}"))["run"]
                    if shown["status"] == "succeeded":
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"run {run_id} did not succeed: {shown}")
                    await asyncio.sleep(0.01)
                berth.append(time.monotonic() - began)
                stamps = [
                    datetime.fromisoformat(shown[k])
                    for k in ("createdAt", "startedAt", "finishedAt")
                ]
                steps.append([(b - a).total_seconds() for a, b in itertools.pairwise(stamps)])
            docker: list[float] = []
            for _ in range(args.repeat):
                began = time.monotonic()
                process = await asyncio.create_subprocess_exec(
                    "docker", "run", "--rm", "--label", "berth.bench=1", IMAGE,
                    "/bin/sh", "-c", COMMAND,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                if await asyncio.wait_for(process.wait(), 60) != 0:
                    raise RuntimeError("docker run failed")
                docker.append(time.monotonic() - began)
        finally:
            await stack.agent.stop()
    finally:
        await coordinator.close()
    overhead = 1000 * (statistics.median(berth) - statistics.median(docker))
    log(
        f"run start: berth {statistics.median(berth):.3f} s, "
        f"docker {statistics.median(docker):.3f} s"
    )
    return {
        "berth_median_s": statistics.median(berth),
        "docker_run_median_s": statistics.median(docker),
        "overhead_ms": overhead,
        "accepted_to_started_median_s": statistics.median(s[0] for s in steps),
        "started_to_finished_median_s": statistics.median(s[1] for s in steps),
        "repeat": args.repeat,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=TASKS)
    parser.add_argument("--resources", type=int, default=RESOURCES)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=10, help="runs of each side in phase 3")
    parser.add_argument("--skip-burst", action="store_true", help="skip the all-due minute")
    parser.add_argument("--skip-docker", action="store_true", help="skip phase 3")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-scheduler-") as raw:
        workdir = Path(raw)
        results = {"scheduling": asyncio.run(scheduling(args, workdir))}
        if not args.skip_docker:
            results["start"] = asyncio.run(start_latency(args, workdir))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    sched = results["scheduling"]
    print(f"tasks {args.tasks}, resources {args.resources}")
    print(f"idle CPU: {sched['idle_cpu_percent']:.2f} % of one core")
    for name in ("jitter_spread", "jitter_all_unplanned", "jitter_all"):
        if sched[name]:
            j = sched[name]
            verdict = "ok" if j["p99_s"] < TARGET_JITTER_P99_S else "over target"
            print(f"{name} ({j['tasks']} due): p50 {j['p50_s']:.3f} s, p99 {j['p99_s']:.3f} s,"
                  f" max {j['max_s']:.3f} s ({verdict})")  # fmt: skip
    if sched["jitter_all"] and sched["jitter_all_unplanned"]:
        ratio = sched["jitter_all"]["p99_s"] / sched["jitter_all_unplanned"]["p99_s"]
        print(f"all due, planned ahead vs not: p99 ratio {ratio:.2f}")
    if "start" in results:
        s = results["start"]
        verdict = "ok" if s["overhead_ms"] < TARGET_OVERHEAD_MS else "over target"
        print(f"run start: berth {s['berth_median_s']:.3f} s vs docker run "
              f"{s['docker_run_median_s']:.3f} s: overhead {s['overhead_ms']:.0f} ms "
              f"({verdict})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
