"""Prune decisions and the feature's request handling against a fake engine and a tmp state dir."""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.features import LinkContext
from agent.monitoring.capacity import Inspector
from agent.monitoring.engine import EngineContainer
from agent.monitoring.feature import MonitoringFeature
from agent.monitoring.prune import Pruner
from agent.monitoring.sampler import DockerDiskCache
from agent.monitoring.spool import Spool
from shared.messages import AgentMessage, IdSequence
from shared.messages.monitoring import (
    CapacityInspect,
    CapacityPrune,
    CapacityPruneResult,
    CapacityReport,
    PruneCategory,
)
from tests.polling import eventually
from tests.unit.agent.test_monitoring_sampler import FakeEngine

DAY = 86400
NOW = int(time.time())


def managed(
    cid: str, resource: str, deployment: str, state: str, age_days: float
) -> EngineContainer:
    return EngineContainer(
        container_id=cid,
        name=f"{resource}-{deployment}",
        labels={
            "berth.managed": "true",
            "berth.resource-id": resource,
            "berth.deployment-id": deployment,
        },
        state=state,
        created=int(NOW - age_days * DAY),
        size_rw=1000,
        image_id=f"sha256:{deployment}",
    )


def engine_with_history() -> FakeEngine:
    engine = FakeEngine()
    engine.containers = [
        managed("run1", "res_a", "dep_3", "running", 1),  # serving
        managed("old1", "res_a", "dep_1", "exited", 10),  # leftover
        managed("rb01", "res_a", "dep_2", "exited", 5),  # rollback candidate (protected)
        managed("stop", "res_b", "dep_9", "exited", 8),  # res_b stopped on purpose: newest
        managed("stp0", "res_b", "dep_8", "exited", 9),  # res_b's older deployment
        EngineContainer("mine", "unmanaged", {}, state="exited", created=NOW - 30 * DAY),
    ]
    engine.dangling = [
        {"Id": "sha256:dangling", "Size": 500, "Created": NOW - 20 * DAY},
        {"Id": "sha256:dep_1", "Size": 700, "Created": NOW - 20 * DAY},  # used by old1
    ]
    return engine


def request(categories: list[PruneCategory], **fields: object) -> CapacityPrune:
    return CapacityPrune(id=7, categories=categories, **fields)  # type: ignore[arg-type]


def by_id(result: CapacityPruneResult) -> dict[str, tuple[str, str | None]]:
    return {c.id: (c.action, c.skipped_reason) for c in result.candidates}


def test_dry_run_matches_only_safe_leftovers_and_removes_nothing(tmp_path: Path) -> None:
    engine = engine_with_history()
    result = Pruner(engine, tmp_path).prune(
        request(["stopped-containers", "dangling-images"], protected_deployment_ids=["dep_2"]),
        frame_id=1,
    )
    assert result.dry_run
    assert result.re == 7
    assert by_id(result) == {
        "old1": ("matched", None),
        "rb01": ("skipped", "rollback-candidate"),
        "stop": ("skipped", "active-runtime"),
        "stp0": ("matched", None),
        "sha256:dangling": ("matched", None),
        "sha256:dep_1": ("skipped", "in-use"),
    }
    # Running and unmanaged containers are never even candidates.
    assert "run1" not in by_id(result)
    assert "mine" not in by_id(result)
    assert (result.matched_count, result.skipped_count, result.pruned_count) == (3, 3, 0)
    assert engine.removed == []


def test_real_run_removes_and_before_excludes_newer(tmp_path: Path) -> None:
    engine = engine_with_history()
    before = datetime.now(UTC) - timedelta(days=9.5)
    result = Pruner(engine, tmp_path).prune(
        request(["stopped-containers"], dry_run=False, before=before), frame_id=1
    )
    assert by_id(result)["old1"] == ("pruned", None)
    assert by_id(result)["stp0"] == ("excluded", "newer-than-before")
    assert engine.removed == ["old1"]
    assert result.reclaimed_bytes == 1000


def test_output_limit_counts_omitted(tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.containers = [managed(f"c{i:03}", f"r{i}", f"d{i}", "exited", 3) for i in range(5)]
    engine.containers.append(managed("live", "r0", "d0x", "running", 1))
    result = Pruner(engine, tmp_path).prune(
        request(["stopped-containers"], output_limit=2), frame_id=1
    )
    assert len(result.candidates) == 2
    assert result.omitted_candidate_count == 3
    assert result.inspected_count == 5


def test_old_workspaces(tmp_path: Path) -> None:
    engine = engine_with_history()
    for deployment in ("dep_1", "dep_2", "dep_3", "dep_busy"):
        (tmp_path / "workspaces" / deployment).mkdir(parents=True)
        (tmp_path / "workspaces" / deployment / "source.tar.gz").write_bytes(b"x" * 10)
    journal = tmp_path / "deployments"
    journal.mkdir()
    (journal / "dep_busy.json").write_text(
        json.dumps({"deploymentId": "dep_busy", "resourceId": "res_c", "state": "running"})
    )
    pruner = Pruner(engine, tmp_path)
    result = pruner.prune(
        request(["old-workspaces"], dry_run=False, protected_deployment_ids=["dep_2"]), 1
    )
    assert by_id(result) == {
        "dep_1": ("pruned", None),
        "dep_2": ("skipped", "rollback-candidate"),
        "dep_3": ("skipped", "active-runtime"),
        "dep_busy": ("skipped", "active-runtime"),
    }
    assert sorted(p.name for p in (tmp_path / "workspaces").iterdir()) == [
        "dep_2",
        "dep_3",
        "dep_busy",
    ]


def test_inspect_report(tmp_path: Path) -> None:
    engine = engine_with_history()
    engine.df = {
        "LayersSize": 5000,
        "Images": [{"Size": 3000, "SharedSize": 0, "Containers": 0}],
        "BuildCache": [{"Size": 10, "InUse": False, "Shared": False}],
        "Containers": [{"Id": "old1", "SizeRw": 1000}],
        "Volumes": [{"UsageData": {"Size": 77}}],
    }
    (tmp_path / "workspaces" / "dep_1").mkdir(parents=True)
    report = Inspector(engine, tmp_path, DockerDiskCache(engine)).inspect(3, 9)
    assert report.re == 9
    assert not report.partial
    assert report.docker is not None
    assert (report.docker.images_size, report.docker.reclaimable_images_size) == (5000, 3000)
    assert report.docker.volumes_size == 77
    assert report.disk
    assert report.disk[0].path == "/"
    assert report.memory.total > 0
    assert {c.id for c in report.containers} == {"run1", "old1", "rb01", "stop", "stp0"}
    assert [c.id for c in report.containers if c.serving] == ["run1"]
    estimate = report.safe_reclaimable_estimate
    # old1, rb01 (inspect does not know protected ids) and stp0; never res_b's newest.
    assert estimate.stopped_containers_size == 3000
    assert estimate.dangling_images_size == 500
    assert report.workspaces[0].deployment_id == "dep_1"
    assert report.workspaces[0].rollback_candidate_marker
    assert report.runtime_directories["stateRoot"].detectable


def test_inspect_without_engine_is_partial(tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.failing = True
    report = Inspector(engine, tmp_path, DockerDiskCache(engine)).inspect(3, 9)
    assert report.partial
    assert report.docker is None
    assert {w.code for w in report.warnings} == {"docker-unavailable"}


async def test_feature_answers_requests_in_tasks_while_sampling(tmp_path: Path) -> None:
    engine = engine_with_history()
    spool = Spool(tmp_path / "spool.sqlite3", 100)
    feature = MonitoringFeature(engine, tmp_path, spool, interval_seconds=1.0)
    sent: list[AgentMessage] = []

    async def send(message: AgentMessage) -> None:
        sent.append(message)

    link = LinkContext(send=send, ids=IdSequence())
    runner = asyncio.create_task(feature.run())
    try:

        async def running() -> bool:
            return feature._tasks is not None

        await eventually(running, what="feature running")
        feature.receive(CapacityInspect(id=11), link)
        feature.receive(CapacityPrune(id=12, categories=["stopped-containers"]), link)

        async def answered() -> bool:
            return len(sent) >= 2

        await eventually(answered, what="both answers")
        replies = {m.re: m for m in sent if isinstance(m, CapacityReport | CapacityPruneResult)}
        assert isinstance(replies[11], CapacityReport)
        assert isinstance(replies[12], CapacityPruneResult)

        async def sampled() -> bool:
            return await asyncio.to_thread(spool.count) >= 2

        await eventually(sampled, timeout=10, what="two samples spooled")
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        spool.close()
    assert feature.capabilities == ["monitoring.v1"]
