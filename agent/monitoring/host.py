"""Host readings (CPU, memory, mounts, inodes, network) through psutil and statvfs, synchronous."""

import os
import time
from dataclasses import dataclass

import psutil

from shared.messages.monitoring import CpuTotals, MemoryTotals, MountUsage, NetworkTotals

# Filesystems that hold no user data: sampling them is noise (and some block on stat).
PSEUDO_FILESYSTEMS = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
        "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "overlay", "proc",
        "pstore", "ramfs", "securityfs", "squashfs", "sysfs", "tmpfs", "tracefs", "aufs",
        "fuse.lxcfs", "fuse.snapfuse", "rpc_pipefs", "nfsd",
    }
)  # fmt: skip
# Interfaces that only carry container traffic already counted on the host's real interface
# (veths pair with a container's eth0; bridges forward to the uplink), plus loopback.
_VIRTUAL_PREFIXES = ("lo", "veth", "docker", "br-", "cni", "flannel", "cali", "vxlan")
MOUNT_REFRESH_SECONDS = 60.0
MAX_MOUNTS = 64


def is_host_interface(name: str) -> bool:
    """Whether an interface counts toward the host's network totals."""
    return not name.startswith(_VIRTUAL_PREFIXES)


def mount_usage(path: str, device: str = "", fstype: str = "") -> MountUsage:
    """Space and inodes of the filesystem holding ``path`` (raises OSError)."""
    stat = os.statvfs(path)
    total = stat.f_blocks * stat.f_frsize
    available = stat.f_bavail * stat.f_frsize
    used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
    return MountUsage(
        path=path[:500],
        device=device[:500],
        fstype=fstype[:50],
        total_bytes=total,
        used_bytes=used,
        available_bytes=available,
        inodes_total=stat.f_files,
        inodes_used=max(stat.f_files - stat.f_ffree, 0),
        inodes_available=stat.f_favail,
    )


@dataclass(frozen=True)
class MountPoint:
    """A filesystem worth sampling."""

    path: str
    device: str
    fstype: str


def real_mounts(extra_paths: list[str]) -> list[MountPoint]:
    """Block-device mounts (pseudo filesystems skipped), root and ``extra_paths`` always in."""
    points: dict[str, MountPoint] = {}
    for part in psutil.disk_partitions(all=False):
        if part.fstype in PSEUDO_FILESYSTEMS or not part.device.startswith("/"):
            continue
        # Docker's per-container overlay and bind mounts live under its data root: skip them.
        if "/docker/" in part.mountpoint or "/containerd/" in part.mountpoint:
            continue
        points[part.mountpoint] = MountPoint(part.mountpoint, part.device, part.fstype)
    for path in ["/", *extra_paths]:
        if path not in points and os.path.isdir(path):
            points[path] = MountPoint(path, "", "")
    ordered = sorted(points.values(), key=lambda p: (p.path != "/", p.path))
    return ordered[:MAX_MOUNTS]


class HostReader:
    """Keeps the previous counters so CPU busy and network figures are deltas."""

    def __init__(self) -> None:
        self._cpu_times: tuple[float, float] | None = None  # (busy, total) seconds
        self._net: tuple[int, int] | None = None
        self._mounts: list[MountPoint] = []
        self._mounts_at = float("-inf")

    def cpu(self) -> CpuTotals:
        """Cores, load, busy percent since the previous call (0 on the first)."""
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        # Linux counts guest time inside user and nice already (psutil does the same sum).
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        busy_now = (total - idle, total)
        busy = 0.0
        if self._cpu_times is not None:
            delta_total = busy_now[1] - self._cpu_times[1]
            if delta_total > 0:
                busy = (busy_now[0] - self._cpu_times[0]) / delta_total * 100
        self._cpu_times = busy_now
        load1, load5, load15 = os.getloadavg()
        return CpuTotals(
            logical_cores=psutil.cpu_count() or 0,
            load_average1m=round(load1, 2),
            load_average5m=round(load5, 2),
            load_average15m=round(load15, 2),
            busy_percent=round(min(max(busy, 0.0), 100.0), 2),
            container_cpu_percent=0.0,
        )

    def memory(self) -> MemoryTotals:
        """Host memory (used = total - available, as ``free`` shows it)."""
        memory = psutil.virtual_memory()
        return MemoryTotals(
            total_bytes=memory.total,
            used_bytes=max(memory.total - memory.available, 0),
            available_bytes=memory.available,
            container_used_bytes=0,
        )

    def network(self) -> NetworkTotals | None:
        """Bytes on host interfaces since the previous call (None on the first)."""
        rx = tx = 0
        for name, counters in psutil.net_io_counters(pernic=True).items():
            if is_host_interface(name):
                rx += counters.bytes_recv
                tx += counters.bytes_sent
        previous, self._net = self._net, (rx, tx)
        if previous is None:
            return None
        # Counters reset when an interface goes away: never report a negative delta.
        return NetworkTotals(rx_bytes=max(rx - previous[0], 0), tx_bytes=max(tx - previous[1], 0))

    def mounts(self, extra_paths: list[str], warnings: list[str]) -> list[MountUsage]:
        """Usage of every real mount (the mount list itself is refreshed once a minute)."""
        now = time.monotonic()
        if now - self._mounts_at >= MOUNT_REFRESH_SECONDS:
            self._mounts = real_mounts(extra_paths)
            self._mounts_at = now
        usages = []
        for point in self._mounts:
            try:
                usages.append(mount_usage(point.path, point.device, point.fstype))
            except OSError as exc:
                warnings.append(f"mount {point.path}: {exc.strerror or exc}")
        return usages
