"""The writer's batching: a backlog is written at once, a lone batch lingers for company."""

import asyncio
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

from coordinator.hub.session import AgentSession
from coordinator.monitoring.prepared import prepare
from coordinator.monitoring.service import MAX_WRITE_SAMPLES, MonitoringService, _Pending
from tests.unit.coordinator.test_monitoring_ingest import make_sample

_SESSION = cast(AgentSession, SimpleNamespace(server_id="srv_w", ws=SimpleNamespace(closed=True)))


def queued(service: MonitoringService, samples: int, *, age: float = 0.0) -> None:
    """Queue one batch of ``samples`` samples that has waited ``age`` seconds already."""
    batch = [prepare(make_sample(datetime.now(UTC), sequence=i + 1)) for i in range(samples)]
    item = _Pending(_SESSION, 1, batch, None, queued_at=time.monotonic() - age)
    service._queue.put_nowait(item)


async def test_a_backlog_older_than_the_linger_is_taken_without_waiting() -> None:
    service = MonitoringService(linger_seconds=30.0)
    for _ in range(3):
        queued(service, 2, age=31.0)
    async with asyncio.timeout(5):  # would hang for 30 s if it lingered again
        batch = await service._next_batch()
    assert [len(p.samples) for p in batch] == [2, 2, 2]


async def test_a_fresh_batch_lingers_for_later_ones_up_to_the_sample_cap() -> None:
    service = MonitoringService(linger_seconds=30.0)
    queued(service, 1)

    async def later() -> None:
        await asyncio.sleep(0.05)  # arrive after the batch began to linger: that is the point
        queued(service, 1)
        queued(service, MAX_WRITE_SAMPLES)  # reaching the cap ends the wait

    async with asyncio.timeout(5), asyncio.TaskGroup() as tasks:
        _ = tasks.create_task(later())
        batch = await service._next_batch()
    assert [len(p.samples) for p in batch] == [1, 1, MAX_WRITE_SAMPLES]
