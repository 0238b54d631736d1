"""cgroup v1/v2 counters from fixture trees, CPU percent from two readings, /proc net/dev."""

from pathlib import Path

import pytest

from agent.monitoring.cgroups import (
    CgroupReader,
    cpu_percent,
    detect_version,
    memory_without_cache,
    parse_blkio_v1,
    parse_io_stat_v2,
    read_net_dev,
)

CID = "3736fa00a96b1afdeb5b1ad0a8ae491384c1ebfe1ad8cbbd886b38aa0601c880"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v1_tree(root: Path, layout: str = "docker/{id}") -> None:
    """A cgroup v1 hierarchy as Docker 20.10 (cgroupfs driver) leaves it."""
    base = layout.format(id=CID)
    write(root / "cpuacct" / base / "cpuacct.usage", "2500000000\n")
    write(root / "memory" / base / "memory.usage_in_bytes", "10485760\n")
    write(
        root / "memory" / base / "memory.stat",
        "cache 2097152\nrss 7340032\ninactive_file 1048576\n"
        "total_cache 2097152\ntotal_inactive_file 1572864\n",
    )
    write(root / "memory" / base / "memory.limit_in_bytes", "9223372036854771712\n")
    write(
        root / "blkio" / base / "blkio.throttle.io_service_bytes",
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\n"
        "8:16 Read 100\n8:16 Write 0\nTotal 12388\n",
    )
    write(root / "pids" / base / "pids.current", "3\n")


def v2_tree(root: Path, layout: str) -> None:
    """A unified hierarchy (systemd or cgroupfs driver layout)."""
    write(root / "cgroup.controllers", "cpuset cpu io memory pids\n")
    base = root / layout.format(id=CID)
    write(base / "cpu.stat", "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    write(base / "memory.current", "20971520\n")
    write(base / "memory.stat", "anon 15728640\nfile 5242880\ninactive_file 4194304\n")
    write(base / "memory.max", "536870912\n")
    write(
        base / "io.stat",
        "8:0 rbytes=1000 wbytes=2000 rios=1 wios=2 dbytes=0 dios=0\n"
        "259:0 rbytes=24 wbytes=48 rios=1 wios=1 dbytes=0 dios=0\n",
    )
    write(base / "pids.current", "7\n")


def test_v1_counters_subtract_inactive_file_and_treat_huge_limit_as_none(tmp_path: Path) -> None:
    v1_tree(tmp_path)
    reader = CgroupReader(tmp_path)
    assert reader.version == 1
    counters = reader.read(CID)
    assert counters is not None
    assert counters.cpu_ns == 2_500_000_000
    assert counters.memory_bytes == 10485760 - 1572864
    assert counters.memory_limit_bytes is None
    assert (counters.block_read_bytes, counters.block_write_bytes) == (4196, 8192)
    assert counters.pids == 3


def test_v1_systemd_driver_layout_is_found(tmp_path: Path) -> None:
    v1_tree(tmp_path, "system.slice/docker-{id}.scope")
    counters = CgroupReader(tmp_path).read(CID)
    assert counters is not None
    assert counters.pids == 3


@pytest.mark.parametrize("layout", ["system.slice/docker-{id}.scope", "docker/{id}"])
def test_v2_counters(tmp_path: Path, layout: str) -> None:
    v2_tree(tmp_path, layout)
    reader = CgroupReader(tmp_path)
    assert reader.version == 2
    counters = reader.read(CID)
    assert counters is not None
    assert counters.cpu_ns == 1_500_000_000
    assert counters.memory_bytes == 20971520 - 4194304
    assert counters.memory_limit_bytes == 536870912
    assert (counters.block_read_bytes, counters.block_write_bytes) == (1024, 2048)
    assert counters.pids == 7


def test_v2_unlimited_memory_is_none(tmp_path: Path) -> None:
    v2_tree(tmp_path, "system.slice/docker-{id}.scope")
    write(tmp_path / f"system.slice/docker-{CID}.scope/memory.max", "max\n")
    counters = CgroupReader(tmp_path).read(CID)
    assert counters is not None
    assert counters.memory_limit_bytes is None


def test_missing_container_and_unreadable_files(tmp_path: Path) -> None:
    v1_tree(tmp_path)
    (tmp_path / "pids" / "docker" / CID / "pids.current").unlink()
    (tmp_path / "cpuacct" / "docker" / CID / "cpuacct.usage").write_text("garbage\n")
    reader = CgroupReader(tmp_path)
    counters = reader.read(CID)
    assert counters is not None
    assert counters.pids is None
    assert counters.cpu_ns is None
    assert counters.memory_bytes is not None
    assert reader.read("0" * 64) is None


def test_detect_version(tmp_path: Path) -> None:
    assert detect_version(tmp_path) == 1
    write(tmp_path / "cgroup.controllers", "cpu\n")
    assert detect_version(tmp_path) == 2


def test_cpu_percent_from_two_readings() -> None:
    # 1.5 s of CPU over 1 s of wall time: one and a half cores (Docker's convention).
    assert cpu_percent(1_000_000_000, 2_500_000_000, 1.0) == 150.0
    assert cpu_percent(0, 7_500_000_000, 15.0) == 50.0
    # A counter reset (container restarted) or no time elapsed never goes negative.
    assert cpu_percent(5, 1, 1.0) == 0.0
    assert cpu_percent(1, 5, 0.0) == 0.0


def test_memory_without_cache_falls_back_and_never_goes_negative() -> None:
    assert memory_without_cache(100, {"cache": 30}, 1) == 70
    assert memory_without_cache(100, {"total_inactive_file": 10, "cache": 30}, 1) == 90
    assert memory_without_cache(100, {"inactive_file": 500}, 2) == 100
    assert memory_without_cache(100, None, 2) == 100


def test_blkio_and_io_stat_parsers_ignore_noise() -> None:
    assert parse_blkio_v1("Total 0\n") == (0, 0)
    assert parse_blkio_v1("8:0 Read 5\n8:0 Write x\n") == (5, 0)
    assert parse_io_stat_v2("8:0 rbytes=7 wbytes=9 dbytes=1\n\n") == (7, 9)


def test_net_dev_excludes_loopback() -> None:
    text = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets"
        " errs drop fifo colls carrier compressed\n"
        "    lo:    9999      10    0    0    0     0          0         0     9999      10"
        "    0    0    0     0       0          0\n"
        "  eth0:    1200      12    0    0    0     0          0         0      800       8"
        "    0    0    0     0       0          0\n"
    )
    assert read_net_dev(text) == (1200, 800)
