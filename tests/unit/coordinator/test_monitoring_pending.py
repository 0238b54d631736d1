"""The writer's in-memory rollup deltas: folded exactly once, and a safe fall-back to the
database pass whenever they might not match the rows past the watermark."""

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from coordinator.db.monitoring_models import RuntimeSample, SampleRollup
from coordinator.hub.session import AgentSession
from coordinator.monitoring import rollups
from coordinator.monitoring.metrics import floor_time
from coordinator.monitoring.prepared import prepare
from coordinator.monitoring.rollups import roll_up_all, watermark
from coordinator.monitoring.service import MonitoringService, _Pending
from tests.harness import Coordinator
from tests.unit.coordinator.test_monitoring_ingest import make_sample, service_of

_CLOSED = SimpleNamespace(closed=True)  # no ack is sent on a closed link


def hour_start() -> datetime:
    return floor_time(datetime.now(UTC) - timedelta(hours=2), "hour")


async def write(service: MonitoringService, server: str, busy: list[float]) -> None:
    """Store one sample per ``busy`` value for ``server`` through the writer."""
    base = hour_start()
    session = cast(AgentSession, SimpleNamespace(server_id=server, ws=_CLOSED))
    samples = [make_sample(base + timedelta(seconds=i), busy=b) for i, b in enumerate(busy)]
    await service.write([_Pending(session, 1, [prepare(s) for s in samples], None)])


def tracking(service: MonitoringService) -> bool:
    """Whether the writer's deltas continue the watermark (a call: mypy must not narrow it)."""
    return service.rollup_lock.pending.tracking


async def hour_row(server: str) -> tuple[int, float]:
    """(sample count, busy sum) of the server's hour rollup."""
    row = await SampleRollup.get(scope_id=server, bucket="hour", bucket_start=hour_start())
    return row.sample_count, row.sums["cpu.busyPercent"]


async def test_writer_deltas_are_flushed_once_with_the_watermark(
    coordinator: Coordinator,
) -> None:
    service = service_of(coordinator)
    pending = service.rollup_lock.pending
    await write(service, "srv_p1", [10.0, 20.0])
    assert not tracking(service)  # nothing known yet about rows past the watermark
    assert await roll_up_all(service.rollup_lock) == 2  # read from the database
    assert tracking(service)

    await write(service, "srv_p1", [30.0])
    await write(service, "srv_p1", [40.0, 50.0])
    assert pending.samples == 3
    before = await watermark()
    assert await roll_up_all(service.rollup_lock) == 3  # the deltas alone
    assert await hour_row("srv_p1") == (5, 150.0)
    newest = await RuntimeSample.all().order_by("-id").first()
    assert newest is not None
    assert await watermark() == newest.id > before
    assert await roll_up_all(service.rollup_lock) == 0  # nothing counted twice
    assert await hour_row("srv_p1") == (5, 150.0)


async def test_rows_not_inserted_by_the_writer_stop_tracking(coordinator: Coordinator) -> None:
    service = service_of(coordinator)
    await write(service, "srv_p2", [10.0])
    assert await roll_up_all(service.rollup_lock) == 1
    await write(service, "srv_p2", [20.0])
    assert tracking(service)
    # Another inserter (an older coordinator, a restore): its row is not in the deltas.
    now = datetime.now(UTC)
    stray = make_sample(hour_start() + timedelta(seconds=30), busy=5.0)
    _ = await RuntimeSample.create(
        sample_id=uuid.uuid4().hex,
        server_id="srv_p2",
        sequence=1,
        observed_at=stray.observed_at,
        received_at=now,
        interval_seconds=5.0,
        totals=stray.totals.model_dump(mode="json", by_alias=True),
        mounts=[],
        containers=[],
        warnings=[],
    )
    await write(service, "srv_p2", [40.0])
    assert not tracking(service)  # its ids no longer follow the deltas'
    assert await roll_up_all(service.rollup_lock) == 3  # everything past the watermark, once
    assert await hour_row("srv_p2") == (4, 75.0)
    assert tracking(service)


async def test_a_failed_flush_falls_back_to_the_database(
    coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = service_of(coordinator)
    await write(service, "srv_p3", [10.0])
    assert await roll_up_all(service.rollup_lock) == 1
    await write(service, "srv_p3", [20.0, 30.0])
    mark = await watermark()
    real_apply = rollups.apply_upsert

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(rollups, "apply_upsert", broken)
    with pytest.raises(RuntimeError):
        await roll_up_all(service.rollup_lock)
    assert not tracking(service)
    assert await watermark() == mark  # rolled back whole
    monkeypatch.setattr(rollups, "apply_upsert", real_apply)
    assert await roll_up_all(service.rollup_lock) == 2
    assert await hour_row("srv_p3") == (3, 60.0)


async def test_a_row_deleted_after_the_plan_rolls_the_flush_back(
    coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge is planned outside the transaction; a row retention deleted in between is
    noticed, nothing of the flush is written, and the database pass folds the samples."""
    service = service_of(coordinator)
    await write(service, "srv_p5", [10.0])
    assert await roll_up_all(service.rollup_lock) == 1
    await write(service, "srv_p5", [20.0, 30.0])
    mark = await watermark()
    real_plan = rollups.plan_upsert

    async def plan_then_prune(*args: Any, **kwargs: Any) -> rollups.UpsertPlan:
        plan = await real_plan(*args, **kwargs)
        await SampleRollup.filter(scope_id="srv_p5", bucket="hour").delete()  # as retention
        return plan

    monkeypatch.setattr(rollups, "plan_upsert", plan_then_prune)
    with pytest.raises(rollups.RollupsChanged):
        await roll_up_all(service.rollup_lock)
    assert not tracking(service)
    assert await watermark() == mark  # rolled back whole: no row of the flush was written
    five = await SampleRollup.get(scope_id="srv_p5", bucket="five-minute")
    assert five.sample_count == 1
    monkeypatch.setattr(rollups, "plan_upsert", real_plan)
    assert await roll_up_all(service.rollup_lock) == 2
    assert await hour_row("srv_p5") == (2, 50.0)  # the deleted sample stays deleted


async def test_rows_the_last_flush_wrote_are_merged_from_memory(
    coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = service_of(coordinator)
    pending = service.rollup_lock.pending
    looked_up: list[list[Any]] = []
    real_lookup = rollups._existing_rows

    async def recorded(keys: list[Any], db: Any) -> Any:
        looked_up.append(keys)
        return await real_lookup(keys, db)

    monkeypatch.setattr(rollups, "_existing_rows", recorded)
    await write(service, "srv_p6", [10.0])
    assert await roll_up_all(service.rollup_lock) == 1  # a database pass: rows created
    assert pending.written == {}
    await write(service, "srv_p6", [20.0])
    assert await roll_up_all(service.rollup_lock) == 1  # read back once, then remembered
    assert [key[2:] for key in looked_up[-1]] == [("server", "srv_p6", "srv_p6")] * 2
    assert {key[0] for key in pending.written} == {"five-minute", "hour"}
    looked_up.clear()
    await write(service, "srv_p6", [30.0])
    assert await roll_up_all(service.rollup_lock) == 1
    assert looked_up in ([], [[]])  # merged into what the last flush wrote
    assert await hour_row("srv_p6") == (3, 60.0)
    assert (
        pending.written[next(k for k in pending.written if k[0] == "hour")][1].sums[
            "cpu.busyPercent"
        ]
        == 60.0
    )

    # A database pass writes behind the memory: it is forgotten, and rows are read again.
    pending.stop()
    await write(service, "srv_p6", [40.0])
    assert await roll_up_all(service.rollup_lock) == 1
    assert pending.written == {}
    await write(service, "srv_p6", [50.0])
    assert await roll_up_all(service.rollup_lock) == 1
    assert await hour_row("srv_p6") == (5, 150.0)


async def test_deltas_that_do_not_continue_the_stored_watermark_are_dropped(
    coordinator: Coordinator,
) -> None:
    service = service_of(coordinator)
    await write(service, "srv_p4", [10.0])
    assert await roll_up_all(service.rollup_lock) == 1
    await write(service, "srv_p4", [20.0])
    # Another process folded (and moved the watermark) meanwhile: the deltas are stale.
    assert await rollups.roll_up_once() == 1
    assert await roll_up_all(service.rollup_lock) == 0
    assert await hour_row("srv_p4") == (2, 30.0)
    await write(service, "srv_p4", [30.0])
    assert await roll_up_all(service.rollup_lock) == 1
    assert await hour_row("srv_p4") == (3, 60.0)
