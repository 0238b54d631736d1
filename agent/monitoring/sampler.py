"""One usage reading of the host and its running containers; all blocking reads in one call."""

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.monitoring.cgroups import (
    CgroupCounters,
    CgroupReader,
    cpu_percent,
    read_net_dev,
    read_small_file,
)
from agent.monitoring.engine import Engine, EngineContainer, EngineError
from agent.monitoring.host import HostReader
from shared.messages.monitoring import (
    ContainerUsage,
    CpuTotals,
    DiskTotals,
    DockerTotals,
    InodeTotals,
    MemoryTotals,
    MountUsage,
    NetworkTotals,
    Totals,
)

# /system/df walks every layer: seconds on a loaded host, so its figures are reused this long.
DOCKER_DF_MAX_AGE_SECONDS = 300.0
MAX_WARNINGS = 20
MAX_CONTAINERS = 500
# The container list costs the engine more than all cgroup reads: at short intervals it is
# reused this long (a container that stops meanwhile forces a fresh list at the next sample).
CONTAINER_LIST_MAX_AGE_SECONDS = 10.0
PROC_ROOT = Path("/proc")


@dataclass
class Reading:
    """What one sample observed, before it gets its id and spool sequence."""

    totals: Totals
    mounts: list[MountUsage]
    containers: list[ContainerUsage]
    warnings: list[str]


@dataclass
class _Previous:
    """A container's counters at the previous sample, to turn totals into deltas."""

    at: float
    counters: CgroupCounters
    net: tuple[int, int] | None
    pid: int | None


class DockerDiskCache:
    """The last ``/system/df`` figures; refreshed by the feature in its own thread when stale."""

    def __init__(self, engine: Engine, max_age: float = DOCKER_DF_MAX_AGE_SECONDS) -> None:
        self._engine = engine
        self._max_age = max_age
        self._lock = threading.Lock()
        self.data: dict[str, Any] | None = None
        self.error: str | None = None
        self._at = float("-inf")

    def stale(self) -> bool:
        """Whether a refresh is due."""
        return time.monotonic() - self._at >= self._max_age

    def refresh(self) -> None:
        """Blocking: ask the engine (call from a worker thread)."""
        try:
            data = self._engine.disk_usage()
        except EngineError as exc:
            with self._lock:
                self.error, self._at = str(exc), time.monotonic()
            return
        with self._lock:
            self.data, self.error, self._at = data, None, time.monotonic()

    def totals(self) -> DockerTotals | None:
        """Image, build-cache and writable bytes, None before the first answer."""
        with self._lock:
            data = self.data
        if data is None:
            return None
        return DockerTotals(
            image_bytes=max(int(data.get("LayersSize") or 0), 0),
            build_cache_bytes=sum(
                max(int(b.get("Size") or 0), 0) for b in data.get("BuildCache") or []
            ),
            container_writable_bytes=sum(self.writable().values()),
        )

    def writable(self) -> dict[str, int]:
        """Writable-layer bytes by container id."""
        with self._lock:
            data = self.data
        if data is None:
            return {}
        return {
            str(c.get("Id")): max(int(c.get("SizeRw") or 0), 0)
            for c in data.get("Containers") or []
        }


class Sampler:
    """Reads everything one sample holds; keeps the state deltas need. Not thread-safe: one
    sampling thread at a time (the feature's loop runs samples one after another)."""

    def __init__(
        self,
        engine: Engine,
        docker_disk: DockerDiskCache,
        cgroups: CgroupReader | None = None,
        host: HostReader | None = None,
        proc_root: Path = PROC_ROOT,
        list_max_age: float = CONTAINER_LIST_MAX_AGE_SECONDS,
    ) -> None:
        self._engine = engine
        self._list_max_age = list_max_age
        self._listed: list[EngineContainer] = []
        self._listed_at = float("-inf")
        self._docker_disk = docker_disk
        self._cgroups = cgroups or CgroupReader()
        self._host = host or HostReader()
        self._proc = proc_root
        self._previous: dict[str, _Previous] = {}
        self._data_root: str | None = None

    def data_root(self) -> str | None:
        """Docker's data root, asked once (None while the engine does not answer)."""
        if self._data_root is None:
            try:
                self._data_root = self._engine.data_root()
            except EngineError:
                return None
        return self._data_root

    def collect(self) -> Reading:
        """Blocking: one full reading. A signal that cannot be read is null plus a warning."""
        warnings: list[str] = []
        cpu: CpuTotals | None = None
        memory: MemoryTotals | None = None
        network: NetworkTotals | None = None
        try:
            cpu = self._host.cpu()
        except OSError as exc:
            warnings.append(f"cpu: {exc}")
        try:
            memory = self._host.memory()
        except OSError as exc:
            warnings.append(f"memory: {exc}")
        try:
            network = self._host.network()
        except OSError as exc:
            warnings.append(f"network: {exc}")
        data_root = self.data_root()
        mounts = self._host.mounts([data_root] if data_root else [], warnings)
        inode, disk = _disk_totals(mounts)
        containers = self._containers(warnings)
        docker = self._docker_disk.totals()
        if docker is None:
            error = self._docker_disk.error or "pending"
            warnings.append(f"docker disk usage not read yet: {error}")
        if disk is not None and docker is not None:
            disk = disk.model_copy(update={"attributed_bytes": docker.container_writable_bytes})
        if cpu is not None:
            container_cpu = round(sum(c.cpu_percent for c in containers), 2)
            cpu = cpu.model_copy(update={"container_cpu_percent": container_cpu})
        if memory is not None:
            container_memory = sum(c.memory_bytes for c in containers)
            memory = memory.model_copy(update={"container_used_bytes": container_memory})
        if len(warnings) > MAX_WARNINGS:
            dropped = len(warnings) - MAX_WARNINGS + 1
            warnings = [*warnings[: MAX_WARNINGS - 1], f"{dropped} more warnings left out"]
        totals = Totals(
            cpu=cpu, memory=memory, disk=disk, inode=inode, docker=docker, network=network
        )
        return Reading(totals=totals, mounts=mounts, containers=containers, warnings=warnings)

    def _running(self, warnings: list[str]) -> tuple[list[EngineContainer], bool] | None:
        """The running containers and whether the list was just asked for."""
        if time.monotonic() - self._listed_at < self._list_max_age:
            return self._listed, False
        try:
            self._listed = self._engine.running_containers()[:MAX_CONTAINERS]
        except EngineError as exc:
            warnings.append(str(exc))
            self._listed, self._listed_at = [], float("-inf")
            return None
        self._listed_at = time.monotonic()
        return self._listed, True

    def _containers(self, warnings: list[str]) -> list[ContainerUsage]:
        listed = self._running(warnings)
        if listed is None:
            return []
        running, fresh = listed
        writable = self._docker_disk.writable()
        seen: set[str] = set()
        usages = []
        for container in running:
            seen.add(container.container_id)
            usage = self._container(container, writable.get(container.container_id), warnings)
            if usage is not None:
                usages.append(usage)
            elif fresh:
                warnings.append(f"container {container.container_id[:12]}: no cgroup found")
            else:
                # Stopped since the list was taken: take a fresh list at the next sample.
                self._listed_at = float("-inf")
        for gone in set(self._previous) - seen:
            del self._previous[gone]
        return usages

    def _pid(
        self, container_id: str, previous: _Previous | None, warnings: list[str]
    ) -> int | None:
        # One inspect per container while it runs: its init pid does not change until it stops.
        if previous is not None and previous.pid is not None:
            return previous.pid
        try:
            return self._engine.container_pid(container_id)
        except EngineError as exc:
            warnings.append(str(exc))
            return None

    def _net(self, pid: int | None) -> tuple[int, int] | None:
        if pid is None:
            return None
        text = read_small_file(f"{self._proc}/{pid}/net/dev")
        try:
            return read_net_dev(text) if text is not None else None
        except ValueError:
            return None

    def _container(
        self, container: EngineContainer, writable: int | None, warnings: list[str]
    ) -> ContainerUsage | None:
        cid = container.container_id
        counters = self._cgroups.read(cid)
        now = time.monotonic()
        if counters is None:
            return None
        previous = self._previous.get(cid)
        pid = self._pid(cid, previous, warnings)
        net = self._net(pid)
        if pid is not None and net is None:
            if os.path.exists(f"{self._proc}/{pid}"):
                warnings.append(f"container {cid[:12]}: network counters unreadable")
            else:
                pid = None  # the process went away (restart): inspect again next time
        self._previous[cid] = _Previous(at=now, counters=counters, net=net, pid=pid)
        rx = tx = read = write = 0
        cpu_value = 0.0
        if previous is not None:
            old = previous.counters
            if counters.cpu_ns is not None and old.cpu_ns is not None:
                cpu_value = cpu_percent(old.cpu_ns, counters.cpu_ns, now - previous.at)
            if net is not None and previous.net is not None:
                rx, tx = max(net[0] - previous.net[0], 0), max(net[1] - previous.net[1], 0)
            read = _delta(old.block_read_bytes, counters.block_read_bytes)
            write = _delta(old.block_write_bytes, counters.block_write_bytes)
        if counters.cpu_ns is None or counters.memory_bytes is None:
            warnings.append(f"container {cid[:12]}: cgroup cpu or memory figure unreadable")
        return ContainerUsage(
            container_id=cid[:80],
            name=container.name[:200],
            project_id=container.project_id,
            environment_id=container.environment_id,
            resource_id=container.resource_id,
            deployment_id=container.deployment_id,
            cpu_percent=cpu_value,
            memory_bytes=max(counters.memory_bytes or 0, 0),
            memory_limit_bytes=counters.memory_limit_bytes,
            rx_bytes=rx,
            tx_bytes=tx,
            block_read_bytes=read,
            block_write_bytes=write,
            writable_bytes=writable,
            pids=counters.pids,
        )


def _delta(previous: int | None, current: int | None) -> int:
    if previous is None or current is None:
        return 0
    return max(current - previous, 0)


def _disk_totals(mounts: list[MountUsage]) -> tuple[InodeTotals | None, DiskTotals | None]:
    """Sum over distinct filesystems (Docker's data root is often on the root device)."""
    distinct: dict[str, MountUsage] = {}
    for mount in mounts:
        distinct.setdefault(mount.device or mount.path, mount)
    if not distinct:
        return None, None
    values = list(distinct.values())
    inodes = InodeTotals(
        total=sum(m.inodes_total for m in values),
        used=sum(m.inodes_used for m in values),
        available=sum(m.inodes_available for m in values),
    )
    disk = DiskTotals(
        total_bytes=sum(m.total_bytes for m in values),
        used_bytes=sum(m.used_bytes for m in values),
        available_bytes=sum(m.available_bytes for m in values),
        attributed_bytes=0,
    )
    return inodes, disk
