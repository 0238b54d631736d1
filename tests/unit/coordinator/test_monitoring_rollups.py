"""Rollups: exactly once across restarts, bucket math, and the rollup API's figures."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlencode

from coordinator.db.monitoring_models import SampleRollup
from coordinator.hub.session import AgentSession
from coordinator.monitoring.metrics import floor_time
from coordinator.monitoring.prepared import prepare
from coordinator.monitoring.rollups import roll_up_all, watermark
from coordinator.monitoring.service import _Pending
from shared.messages.monitoring import Sample, SamplesAck
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator
from tests.unit.coordinator.test_monitoring_ingest import (
    connected_agent,
    container,
    make_resource,
    make_sample,
    send_batch,
    service_of,
)

_CLOSED = SimpleNamespace(closed=True)  # a session whose link is gone: no ack is sent


def base_time() -> datetime:
    """An hour start inside raw retention, so minute buckets can be asked for."""
    return floor_time(datetime.now(UTC) - timedelta(hours=3), "hour")


def offsets(base: datetime, seconds: list[int]) -> list[datetime]:
    """``base`` plus each offset."""
    return [base + timedelta(seconds=s) for s in seconds]


async def store(agent: FakeAgent, samples: list[Sample]) -> None:
    """Send samples and wait for their ack."""
    frame_id = await send_batch(agent, samples)
    ack = await agent.expect(SamplesAck)
    assert ack.re == frame_id


async def rollups_of(scope_id: str) -> dict[tuple[str, datetime], SampleRollup]:
    """Rollup rows of one scope id by (bucket, start)."""
    rows = await SampleRollup.filter(scope_id=scope_id)
    return {(r.bucket, r.bucket_start.astimezone(UTC)): r for r in rows}


async def rollup_api(coordinator: Coordinator, token: str, **params: str) -> dict[str, Any]:
    """``GET /runtime-monitoring/rollup`` answering 200."""
    status, body, _ = await coordinator.call(
        "GET", f"/runtime-monitoring/rollup?{urlencode(params)}", token=token
    )
    assert status == 200, body
    return dict(body)


def cpu_points(body: dict[str, Any]) -> list[tuple[str, int, float | None]]:
    """(from, sampleCount, busyPercent) of the cpu series."""
    (series,) = [s for s in body["series"] if s["signal"] == "cpu"]
    return [
        (p["from"], p["sampleCount"], p["totals"]["cpu"]["busyPercent"]) for p in series["points"]
    ]


async def test_rollups_are_exactly_once_across_restarts(
    coordinator: Coordinator, admin_token: str
) -> None:
    base = base_time()
    agent = await connected_agent(coordinator, admin_token, "roll-1")
    times = offsets(base, [0, 30, 60, 299, 300])
    await store(
        agent,
        [make_sample(t, busy=10.0 * (i + 1), sequence=i + 1) for i, t in enumerate(times)],
    )
    lock = service_of(coordinator).rollup_lock
    assert await roll_up_all(lock) == 5
    rows = await rollups_of(agent.server_id)
    five = rows[("five-minute", base)]
    assert five.sample_count == 4
    assert five.sums["cpu.busyPercent"] == 100.0
    assert five.maxima["cpu.busyPercent"] == 40.0
    assert five.sums["memory.usedBytes"] == 4000.0
    assert five.sums["cpu.loadAverage1m"] == 2.0
    assert rows[("five-minute", base + timedelta(minutes=5))].sample_count == 1
    hour = rows[("hour", base)]
    assert (hour.sample_count, hour.sums["cpu.busyPercent"]) == (5, 150.0)
    mark = await watermark()
    assert mark > 0

    assert await roll_up_all(lock) == 0  # nothing past the watermark: nothing counted twice
    await agent.close()
    await coordinator.restart()  # the shutdown pass and the new process see the same watermark
    assert await watermark() == mark
    after = await rollups_of(agent.server_id)
    assert {k: (r.sample_count, r.sums) for k, r in after.items()} == {
        k: (r.sample_count, r.sums) for k, r in rows.items()
    }

    # A late sample (resent from a spool after downtime) merges into its old bucket.
    await agent.connect()
    await store(agent, [make_sample(base + timedelta(seconds=120), busy=50.0, sequence=6)])
    assert await roll_up_all(service_of(coordinator).rollup_lock) == 1
    merged = await rollups_of(agent.server_id)
    assert merged[("five-minute", base)].sample_count == 5
    assert merged[("five-minute", base)].sums["cpu.busyPercent"] == 150.0
    assert merged[("five-minute", base)].maxima["cpu.busyPercent"] == 50.0
    assert merged[("hour", base)].sample_count == 6
    await agent.close()


async def test_minute_five_minute_and_hour_points(
    coordinator: Coordinator, admin_token: str
) -> None:
    base = base_time()
    agent = await connected_agent(coordinator, admin_token, "roll-2")
    times = offsets(base, [0, 30, 60, 299, 300])
    await store(
        agent,
        [
            make_sample(t, busy=10.0 * (i + 1), used=1000 * (i + 1), sequence=i + 1)
            for i, t in enumerate(times)
        ],
    )
    await roll_up_all(service_of(coordinator).rollup_lock)
    window = {
        "scope.kind": "server",
        "scope.serverId": agent.server_id,
        "window.from": base.isoformat(),
        "window.to": (base + timedelta(minutes=10)).isoformat(),
    }
    minute = await rollup_api(coordinator, admin_token, bucket="minute", **window)
    expected = [(2, 15.0), (1, 30.0), (1, 40.0), (1, 50.0)]
    assert [(c, v) for _, c, v in cpu_points(minute)] == expected
    five = await rollup_api(coordinator, admin_token, bucket="five-minute", **window)
    assert [(c, v) for _, c, v in cpu_points(five)] == [(4, 25.0), (1, 50.0)]
    (memory,) = [s for s in five["series"] if s["signal"] == "memory"]
    assert memory["points"][0]["totals"]["memory"]["usedBytes"] == 2500.0
    assert five["series"][0]["points"][0]["to"] == five["series"][0]["points"][1]["from"]
    hour = await rollup_api(coordinator, admin_token, bucket="hour", **window)
    assert [(c, v) for _, c, v in cpu_points(hour)] == [(5, 30.0)]
    assert hour["totals"]["cpu"]["busyPercent"] == 30.0
    assert hour["totals"]["cpu"]["loadAverage1m"] == 0.5
    assert hour["schemaVersion"] == "runtime-monitoring.rollup/v1"
    assert hour["freshness"] == "stale"  # the newest sample is hours old
    await agent.close()


async def test_container_scopes_and_all_servers(coordinator: Coordinator, admin_token: str) -> None:
    base = base_time()
    ids = await make_resource(coordinator, admin_token, "shop")
    first = await connected_agent(coordinator, admin_token, "roll-3a")
    second = await connected_agent(coordinator, admin_token, "roll-3b")
    await store(
        first,
        [
            make_sample(base, busy=20.0, used=1000, containers=[container(ids, 60.0, 300)]),
            make_sample(
                base + timedelta(seconds=5),
                busy=40.0,
                used=3000,
                containers=[container(ids, 80.0, 500), container(None, 99.0)],
            ),
        ],
    )
    await store(second, [make_sample(base, busy=60.0, used=500, containers=[container(ids, 10.0)])])
    await roll_up_all(service_of(coordinator).rollup_lock)
    window = {
        "window.from": base.isoformat(),
        "window.to": (base + timedelta(hours=1)).isoformat(),
        "bucket": "hour",
    }
    resource = await rollup_api(
        coordinator, admin_token, scopeKind="resource", resourceId=ids["resourceId"], **window
    )
    # Per server: average over its samples; then added across the servers it runs on.
    ((_, count, _),) = cpu_points(resource)
    assert count == 3
    assert resource["totals"]["cpu"]["containerCpuPercent"] == 70.0 + 10.0
    assert resource["totals"]["memory"]["containerUsedBytes"] == 400.0 + 100.0
    assert resource["totals"]["memory"].get("usedBytes") is None  # host figures are per server

    everything = await rollup_api(
        coordinator, admin_token, **{"scope.kind": "all"}, **window, signals="cpu,memory"
    )
    assert [s["signal"] for s in everything["series"]] == ["cpu", "memory"]
    assert everything["totals"]["memory"]["usedBytes"] == 2000.0 + 500.0
    assert everything["totals"]["cpu"]["busyPercent"] == (30.0 + 60.0) / 2
    (top,) = everything["topContributors"]
    assert top["scope"] == {"kind": "resource", "resourceId": ids["resourceId"]} | {
        k: None for k in ("serverId", "projectId", "environmentId", "deploymentId")
    }
    assert top["totals"]["cpu"]["containerCpuPercent"] == 80.0

    project = await rollup_api(
        coordinator, admin_token, scopeKind="project", projectId=ids["projectId"], **window
    )
    assert project["totals"]["cpu"]["containerCpuPercent"] == 80.0
    await first.close()
    await second.close()


async def test_a_large_pass_stays_under_statement_parameter_limits(
    coordinator: Coordinator, admin_token: str
) -> None:
    # 2,000 servers in one pass: thousands of rollup rows created, then updated, in statements
    # that must each stay under PostgreSQL's 32,767 bind parameters.
    service = service_of(coordinator)
    base = base_time()

    def pending(round_: int) -> list[_Pending]:
        return [
            _Pending(
                cast(AgentSession, SimpleNamespace(server_id=f"srv_big{i:04d}", ws=_CLOSED)),
                1,
                [prepare(make_sample(base + timedelta(seconds=round_), busy=float(round_)))],
                None,
            )
            for i in range(2000)
        ]

    await service.write(pending(1))
    assert await roll_up_all(service.rollup_lock, chunk_rows=5000) == 2000
    await service.write(pending(2))
    assert await roll_up_all(service.rollup_lock, chunk_rows=5000) == 2000
    rows = await SampleRollup.filter(scope_id__startswith="srv_big", bucket="hour")
    assert len(rows) == 2000
    assert {(r.sample_count, r.sums["cpu.busyPercent"]) for r in rows} == {(2, 3.0)}
