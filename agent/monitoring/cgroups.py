"""Per-container usage from the kernel's cgroup accounting (v1 and v2 layouts), blocking reads."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CGROUP_ROOT = Path("/sys/fs/cgroup")
# cgroup v1 writes this (page-rounded LONG_MAX) when a memory limit is not set.
_NO_LIMIT_V1 = 1 << 60

Version = Literal[1, 2]


@dataclass(frozen=True)
class CgroupCounters:
    """One reading of a container's counters; a field is None when its file could not be read."""

    cpu_ns: int | None
    memory_bytes: int | None
    memory_limit_bytes: int | None
    block_read_bytes: int | None
    block_write_bytes: int | None
    pids: int | None


def detect_version(root: Path = CGROUP_ROOT) -> Version:
    """v2 when the unified hierarchy is mounted at the root (it has ``cgroup.controllers``)."""
    return 2 if (root / "cgroup.controllers").is_file() else 1


def read_small_file(path: str) -> str | None:
    """A pseudo-file's text (cgroup, /proc), None when it cannot be read."""
    # os.open/os.read: pathlib and buffered io.open cost more than the read itself, and this
    # runs for several files of every container at every sample.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 65536).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_int(path: str) -> int | None:
    raw = read_small_file(path)
    if raw is None:
        return None
    text = raw.strip()
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _read_keyed(path: str) -> dict[str, int] | None:
    """Parse ``key value`` lines (memory.stat, cpu.stat)."""
    text = read_small_file(path)
    if text is None:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def memory_without_cache(usage: int, stat: dict[str, int] | None, version: Version) -> int:
    """Docker CLI's figure: usage minus inactive file pages (v1 falls back to ``cache``)."""
    if not stat:
        return usage
    if version == 1:
        reclaimable = stat.get("total_inactive_file", stat.get("cache", 0))
    else:
        reclaimable = stat.get("inactive_file", 0)
    return usage - reclaimable if 0 <= reclaimable < usage else usage


def parse_blkio_v1(text: str) -> tuple[int, int]:
    """Sum ``<maj:min> Read|Write <bytes>`` lines of ``blkio.throttle.io_service_bytes``."""
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        if parts[1] == "Read":
            read += int(parts[2])
        elif parts[1] == "Write":
            write += int(parts[2])
    return read, write


def parse_io_stat_v2(text: str) -> tuple[int, int]:
    """Sum ``rbytes=``/``wbytes=`` over the devices of ``io.stat``."""
    read = write = 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if not value.isdigit():
                continue
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write


class CgroupReader:
    """Finds a container's cgroup directories (layout detected once) and reads its counters."""

    def __init__(self, root: Path = CGROUP_ROOT, version: Version | None = None) -> None:
        self.root = root
        self._root = str(root)
        self.version: Version = version if version is not None else detect_version(root)
        # Which of the known layouts this host uses; found with the first container seen.
        self._layout: str | None = None

    def _candidates(self) -> list[str]:
        if self.version == 2:
            return ["system.slice/docker-{id}.scope", "docker/{id}"]
        return ["{ctrl}/docker/{id}", "{ctrl}/system.slice/docker-{id}.scope"]

    def _directory(self, layout: str, container_id: str, controller: str) -> str:
        return os.path.join(self._root, layout.format(id=container_id, ctrl=controller))

    def _layout_for(self, container_id: str) -> str | None:
        if self._layout is not None:
            return self._layout
        probe = "memory" if self.version == 1 else ""
        for layout in self._candidates():
            if os.path.isdir(self._directory(layout, container_id, probe)):
                self._layout = layout
                return layout
        return None

    def read(self, container_id: str) -> CgroupCounters | None:
        """The container's counters, or None when its cgroup is not found (it just stopped)."""
        layout = self._layout_for(container_id)
        if layout is None:
            return None
        if self.version == 1:
            return self._read_v1(layout, container_id)
        return self._read_v2(self._directory(layout, container_id, ""))

    def _read_v1(self, layout: str, container_id: str) -> CgroupCounters | None:
        memory_dir = self._directory(layout, container_id, "memory")
        usage = _read_int(f"{memory_dir}/memory.usage_in_bytes")
        if usage is None and not os.path.isdir(memory_dir):
            return None
        memory = None
        if usage is not None:
            memory = memory_without_cache(usage, _read_keyed(f"{memory_dir}/memory.stat"), 1)
        limit = _read_int(f"{memory_dir}/memory.limit_in_bytes")
        blkio_dir = self._directory(layout, container_id, "blkio")
        blkio = read_small_file(f"{blkio_dir}/blkio.throttle.io_service_bytes")
        read, write = parse_blkio_v1(blkio) if blkio is not None else (None, None)
        cpu_dir = self._directory(layout, container_id, "cpuacct")
        pids_dir = self._directory(layout, container_id, "pids")
        return CgroupCounters(
            cpu_ns=_read_int(f"{cpu_dir}/cpuacct.usage"),
            memory_bytes=memory,
            memory_limit_bytes=limit if limit is not None and limit < _NO_LIMIT_V1 else None,
            block_read_bytes=read,
            block_write_bytes=write,
            pids=_read_int(f"{pids_dir}/pids.current"),
        )

    def _read_v2(self, directory: str) -> CgroupCounters | None:
        cpu = _read_keyed(f"{directory}/cpu.stat")
        if cpu is None and not os.path.isdir(directory):
            return None
        usage_usec = cpu.get("usage_usec") if cpu else None
        usage = _read_int(f"{directory}/memory.current")
        memory = None
        if usage is not None:
            memory = memory_without_cache(usage, _read_keyed(f"{directory}/memory.stat"), 2)
        io = read_small_file(f"{directory}/io.stat")
        read, write = parse_io_stat_v2(io) if io is not None else (None, None)
        return CgroupCounters(
            cpu_ns=usage_usec * 1000 if usage_usec is not None else None,
            memory_bytes=memory,
            memory_limit_bytes=_read_int(f"{directory}/memory.max"),
            block_read_bytes=read,
            block_write_bytes=write,
            pids=_read_int(f"{directory}/pids.current"),
        )


def cpu_percent(previous_ns: int, current_ns: int, elapsed_seconds: float) -> float:
    """CPU used between two readings; Docker's convention: 100 = one core fully busy."""
    if elapsed_seconds <= 0 or current_ns < previous_ns:
        return 0.0
    return round((current_ns - previous_ns) / (elapsed_seconds * 1e9) * 100, 2)


def read_net_dev(text: str) -> tuple[int, int]:
    """Sum rx/tx bytes of a ``/proc/<pid>/net/dev`` table, loopback excluded."""
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx
