"""The sample clock: newest sample per server and raw span, from memory or looked up once."""

from datetime import UTC, datetime, timedelta

from coordinator.monitoring.sample_clock import SampleClock
from tests.harness import Coordinator
from tests.unit.coordinator.test_monitoring_ingest import connected_agent, make_sample, service_of
from tests.unit.coordinator.test_monitoring_rollups import store


async def test_a_fresh_clock_looks_servers_up_once_then_follows_the_writer(
    coordinator: Coordinator, admin_token: str
) -> None:
    agent = await connected_agent(coordinator, admin_token, "clock-1")
    now = datetime.now(UTC).replace(microsecond=0)
    older, newer = now - timedelta(minutes=5), now - timedelta(minutes=1)
    await store(agent, [make_sample(newer, sequence=2), make_sample(older, sequence=1)])
    live = service_of(coordinator).clock
    assert await live.newest([agent.server_id]) == (newer, 5.0)

    clock = SampleClock()  # as after a restart: nothing in memory
    assert await clock.newest([agent.server_id, "srv_without_samples"]) == (newer, 5.0)
    assert await clock.newest(["srv_without_samples"]) == (None, None)
    assert await clock.span() == (older, newer)

    latest = now + timedelta(seconds=30)
    clock.observed(agent.server_id, latest, 15.0)
    clock.observed(agent.server_id, older, 15.0)  # a late sample does not move it back
    assert await clock.newest([agent.server_id]) == (latest, 15.0)
    assert await clock.span() == (older, latest)
    earliest = older - timedelta(hours=1)
    clock.observed("srv_without_samples", earliest, 15.0)
    assert await clock.span() == (earliest, latest)
    assert await clock.newest(["srv_without_samples"]) == (earliest, 15.0)

    clock.pruned()  # what the database holds again
    assert await clock.span() == (older, newer)
    assert await clock.newest(["srv_without_samples"]) == (None, None)
    await agent.close()


async def test_a_scope_gets_the_newest_sample_of_its_own_servers() -> None:
    clock = SampleClock()
    base = datetime(2026, 12, 1, tzinfo=UTC)
    servers = [f"srv_{i}" for i in range(5)]
    for i, server in enumerate(servers):
        clock.observed(server, base + timedelta(minutes=i), float(i + 1))
    assert await clock.newest(servers) == (base + timedelta(minutes=4), 5.0)
    # Without the server of the newest sample overall: the newest among its own.
    assert await clock.newest(["srv_0", "srv_2"]) == (base + timedelta(minutes=2), 3.0)
    clock.observed("srv_1", base + timedelta(hours=1), 9.0)
    assert await clock.newest(["srv_3", "srv_1"]) == (base + timedelta(hours=1), 9.0)
    assert await clock.newest(["srv_3", "srv_4"]) == (base + timedelta(minutes=4), 5.0)
    clock.pruned()
    clock.observed("srv_3", base, 2.0)
    assert await clock.newest(["srv_3"]) == (base, 2.0)
