"""The sampler against a fake engine and fixture cgroup/proc trees: attribution, deltas, nulls."""

import json
from pathlib import Path
from typing import Any

from agent.monitoring.cgroups import CgroupReader
from agent.monitoring.engine import EngineContainer, EngineError
from agent.monitoring.sampler import DockerDiskCache, Sampler
from tests.unit.agent.test_monitoring_cgroups import write

BUSY = "a" * 64
IDLE = "b" * 64
LABELS = {
    "berth.managed": "true",
    "berth.project-id": "prj_1",
    "berth.environment-id": "env_1",
    "berth.resource-id": "res_1",
    "berth.deployment-id": "dep_1",
}


class FakeEngine:
    """Answers the monitoring engine calls from in-memory state; can be made to fail."""

    def __init__(self) -> None:
        self.containers: list[EngineContainer] = []
        self.pids: dict[str, int] = {}
        self.df: dict[str, Any] = {"LayersSize": 0}
        self.dangling: list[dict[str, Any]] = []
        self.removed: list[str] = []
        self.failing = False
        self.inspections = 0
        self.listings = 0

    def _check(self) -> None:
        if self.failing:
            raise EngineError("engine unreachable (fake)")

    def running_containers(self) -> list[EngineContainer]:
        self._check()
        self.listings += 1
        return [c for c in self.containers if c.state == "running"]

    def all_containers(self, *, size: bool) -> list[EngineContainer]:
        self._check()
        return list(self.containers)

    def container_pid(self, container_id: str) -> int | None:
        self._check()
        self.inspections += 1
        return self.pids.get(container_id)

    def disk_usage(self) -> dict[str, Any]:
        self._check()
        return self.df

    def data_root(self) -> str:
        self._check()
        return "/"

    def dangling_images(self) -> list[dict[str, Any]]:
        self._check()
        return list(self.dangling)

    def remove_container(self, container_id: str) -> None:
        self._check()
        self.removed.append(container_id)
        self.containers = [c for c in self.containers if c.container_id != container_id]

    def remove_image(self, image_id: str) -> None:
        self._check()
        self.removed.append(image_id)


def cgroup(root: Path, cid: str, cpu_ns: int, memory: int, read: int = 0) -> None:
    base = f"docker/{cid}"
    write(root / "cpuacct" / base / "cpuacct.usage", f"{cpu_ns}\n")
    write(root / "memory" / base / "memory.usage_in_bytes", f"{memory}\n")
    write(root / "memory" / base / "memory.stat", "total_inactive_file 0\n")
    write(root / "memory" / base / "memory.limit_in_bytes", "268435456\n")
    write(root / "blkio" / base / "blkio.throttle.io_service_bytes", f"8:0 Read {read}\n")
    write(root / "pids" / base / "pids.current", "2\n")


def net_dev(proc: Path, pid: int, rx: int, tx: int) -> None:
    write(
        proc / str(pid) / "net" / "dev",
        "h1\nh2\n"
        f"  eth0: {rx} 1 0 0 0 0 0 0 {tx} 1 0 0 0 0 0 0\n"
        "    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n",
    )


def setup(tmp_path: Path, list_max_age: float = 0.0) -> tuple[FakeEngine, Sampler, Path, Path]:
    engine = FakeEngine()
    engine.containers = [
        EngineContainer(BUSY, "web-1", LABELS),
        EngineContainer(IDLE, "someone-elses", {"com.example": "x"}),
    ]
    engine.pids = {BUSY: 101, IDLE: 202}
    engine.df = {"LayersSize": 1000, "Containers": [{"Id": BUSY, "SizeRw": 42}]}
    cgroups, proc = tmp_path / "cgroup", tmp_path / "proc"
    cgroup(cgroups, BUSY, 0, 50 << 20)
    cgroup(cgroups, IDLE, 0, 1 << 20)
    net_dev(proc, 101, 1000, 500)
    net_dev(proc, 202, 0, 0)
    disk = DockerDiskCache(engine)
    disk.refresh()
    sampler = Sampler(
        engine, disk, CgroupReader(cgroups, version=1), proc_root=proc, list_max_age=list_max_age
    )
    return engine, sampler, cgroups, proc


def test_attribution_deltas_and_totals(tmp_path: Path) -> None:
    engine, sampler, cgroups, proc = setup(tmp_path)
    first = sampler.collect()
    assert {c.container_id: c.cpu_percent for c in first.containers} == {BUSY: 0.0, IDLE: 0.0}

    # Whatever the real elapsed time, a whole core's worth per second shows as about 100 %.
    cgroup(cgroups, BUSY, 10**12, 60 << 20, read=4096)
    net_dev(proc, 101, 3000, 900)
    second = sampler.collect()
    busy = next(c for c in second.containers if c.container_id == BUSY)
    idle = next(c for c in second.containers if c.container_id == IDLE)
    assert busy.cpu_percent > 100
    assert (busy.project_id, busy.environment_id, busy.resource_id, busy.deployment_id) == (
        "prj_1",
        "env_1",
        "res_1",
        "dep_1",
    )
    assert busy.memory_bytes == 60 << 20
    assert busy.memory_limit_bytes == 268435456
    assert (busy.rx_bytes, busy.tx_bytes, busy.block_read_bytes) == (2000, 400, 4096)
    assert busy.writable_bytes == 42
    assert busy.pids == 2
    assert idle.project_id is None
    assert idle.resource_id is None
    assert idle.cpu_percent == 0
    totals = second.totals
    assert totals.cpu is not None
    assert totals.cpu.container_cpu_percent == busy.cpu_percent
    assert totals.memory is not None
    assert totals.memory.container_used_bytes == (61 << 20)
    assert totals.docker is not None
    assert totals.docker.image_bytes == 1000
    assert totals.disk is not None
    assert totals.disk.attributed_bytes == 42
    assert totals.inode is not None
    assert totals.network is not None
    assert second.mounts
    assert second.mounts[0].path == "/"
    # One inspect per container while it runs, not one per sample.
    assert engine.inspections == 2
    json.loads(second.totals.model_dump_json())


def test_unreadable_signals_become_null_and_warnings(tmp_path: Path) -> None:
    engine, sampler, cgroups, _proc = setup(tmp_path)
    sampler.collect()
    engine.containers.append(EngineContainer("c" * 64, "vanished", {}))
    reading = sampler.collect()
    assert any("no cgroup found" in w for w in reading.warnings)

    engine.failing = True
    failing_disk = DockerDiskCache(engine)
    failing_disk.refresh()
    sampler = Sampler(engine, failing_disk, CgroupReader(cgroups, version=1), list_max_age=0)
    reading = sampler.collect()
    assert reading.containers == []
    assert reading.totals.docker is None
    assert any("unreachable" in w for w in reading.warnings)
    assert reading.totals.cpu is not None  # the host part still works


def test_stopped_containers_are_forgotten(tmp_path: Path) -> None:
    engine, sampler, _cgroups, _proc = setup(tmp_path)
    sampler.collect()
    engine.containers = engine.containers[:1]
    sampler.collect()
    engine.containers.append(EngineContainer(IDLE, "someone-elses", {}))
    sampler.collect()
    # IDLE came back: it was inspected again for its (possibly new) pid.
    assert engine.inspections == 3


def test_container_list_is_reused_until_a_container_stops(tmp_path: Path) -> None:
    engine, sampler, cgroups, _proc = setup(tmp_path, list_max_age=3600)
    for _ in range(3):
        assert len(sampler.collect().containers) == 2
    assert engine.listings == 1
    # IDLE stops: its cgroup goes away before the engine is asked again.
    engine.containers = engine.containers[:1]
    for leftover in cgroups.glob(f"*/docker/{IDLE}"):
        for file in leftover.iterdir():
            file.unlink()
        leftover.rmdir()
    reading = sampler.collect()
    assert [c.container_id for c in reading.containers] == [BUSY]
    assert reading.warnings == []
    sampler.collect()
    assert engine.listings == 2
