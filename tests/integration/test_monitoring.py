"""Monitoring end to end: a real agent samples a busy container; the coordinator stores, survives
a restart without gaps or duplicates, rolls up and prunes."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import docker
import pytest

from tests.harness import Coordinator, eventually, scaled
from tests.integration.stacks import Workload, deployed_workload

pytestmark = pytest.mark.docker

SAMPLE_SECONDS = 1.0
BUSY = "while :; do :; done"


async def _samples(stack: Workload, since: datetime, **scope: str) -> list[dict[str, Any]]:
    params = {"window.from": since.isoformat(), "limit": "720", **scope}
    body = await stack.call("GET", f"/runtime-monitoring/samples?{urlencode(params)}")
    return list(body["samples"])


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


async def test_busy_container_restart_without_gaps_and_prune_keeps_rollups(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    stack = await deployed_workload(
        coordinator,
        admin_token,
        tmp_path / "agent",
        BUSY,
        agent_env={"BERTH_AGENT_SAMPLE_SECONDS": str(SAMPLE_SECONDS)},
    )
    try:
        resource = {"scope.kind": "resource", "scope.resourceId": stack.resource_id}
        busy_seen: list[float] = []

        async def busy() -> bool:
            samples = await _samples(stack, started, **resource, signals="cpu")
            busy_seen[:] = [s["totals"]["cpu"]["containerCpuPercent"] for s in samples]
            return any(value > 50.0 for value in busy_seen[-3:])

        await eventually(busy, timeout=60, what="a busy resource sample over 50 % CPU")

        # Coordinator down for several intervals: the agent spools and resends afterwards.
        server = {"scope.kind": "server", "scope.serverId": stack.server_id}
        before = await _samples(stack, started, **server)
        await coordinator.stop()
        down_since = datetime.now(UTC)
        await eventually(_elapsed(down_since, 5 * SAMPLE_SECONDS), what="downtime")
        await coordinator.start()
        back_at = datetime.now(UTC)

        async def caught_up() -> bool:
            samples = await _samples(stack, started, **server)
            return bool(samples) and _time(samples[-1]["observedAt"]) > back_at + timedelta(
                seconds=2 * SAMPLE_SECONDS
            )

        await eventually(caught_up, timeout=60, what="samples after the restart")
        samples = await _samples(stack, started, **server)
        ids = [s["sampleId"] for s in samples]
        assert len(ids) == len(set(ids)), "a sample was stored twice"
        assert set(s["sampleId"] for s in before) <= set(ids)
        times = [_time(s["observedAt"]) for s in samples]
        assert times == sorted(times)
        first_after_first_busy = next(
            i for i, t in enumerate(times) if t >= _time(before[0]["observedAt"])
        )
        gaps = [
            (b - a).total_seconds()
            for a, b in zip(
                times[first_after_first_busy:], times[first_after_first_busy + 1 :], strict=False
            )
        ]
        assert max(gaps) <= 1.5 * SAMPLE_SECONDS + scaled(0.5), gaps
        assert any(t < down_since for t in times)
        during = [t for t in times if down_since + timedelta(seconds=1) < t < back_at]
        assert during, "samples taken while the coordinator was down are missing"

        # Prune everything raw: rollups (folded first) stay and still answer.
        cutoff = datetime.now(UTC)
        resource_samples = await _samples(
            stack, started, **resource, **{"window.to": cutoff.isoformat()}
        )
        pruned = await stack.call(
            "POST", "/runtime-monitoring/prune", {"dryRun": False, "before": cutoff.isoformat()}
        )
        assert pruned["prunedSampleCount"] >= len(samples)
        assert await _samples(stack, started, **server, **{"window.to": cutoff.isoformat()}) == []
        params = {
            "bucket": "five-minute",
            "window.from": (started - timedelta(minutes=5)).isoformat(),
            **resource,
        }
        rolled = await stack.call("GET", f"/runtime-monitoring/rollup?{urlencode(params)}")
        cpu = next(s for s in rolled["series"] if s["signal"] == "cpu")
        # Every pruned sample of the resource was folded into its rollups before it went.
        assert sum(p["sampleCount"] for p in cpu["points"]) >= len(resource_samples) > 0
        assert rolled["totals"]["cpu"]["containerCpuPercent"] > 25.0
        markers = [m["deploymentId"] for m in rolled["deploymentMarkers"]]
        assert stack.deployments[-1] in markers
    finally:
        await stack.agent.stop()


def _elapsed(since: datetime, seconds: float) -> Any:
    async def check() -> bool:
        return (datetime.now(UTC) - since).total_seconds() >= seconds

    return check
