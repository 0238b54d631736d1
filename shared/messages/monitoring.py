"""Usage samples (agent -> coordinator, spooled and acknowledged) and live capacity inspection."""

import secrets
import time
from datetime import datetime
from typing import Literal

from shared.messages.typeset import message_types
from shared.wire import Field, WireModel

MONITORING_CAPABILITY = "monitoring.v1"
"""Advertised in ``hello.capabilities`` by agents that send samples and answer capacity requests."""

MAX_SAMPLES_PER_BATCH = 50


class CpuTotals(WireModel):
    """Host CPU: logical cores, load averages, busy percent, and the sum over containers."""

    logical_cores: int = Field(ge=0)
    load_average1m: float = Field(ge=0)
    load_average5m: float = Field(ge=0)
    load_average15m: float = Field(ge=0)
    busy_percent: float = Field(ge=0, le=100, description="whole host, 100 = every core busy")
    container_cpu_percent: float = Field(
        ge=0, description="sum over containers, Docker's convention: 100 = one core"
    )


class MemoryTotals(WireModel):
    """Host memory and the part used by containers."""

    total_bytes: int = Field(ge=0)
    used_bytes: int = Field(ge=0)
    available_bytes: int = Field(ge=0)
    container_used_bytes: int = Field(ge=0)


class DiskTotals(WireModel):
    """Disk over the mounts sampled (root plus Docker's data root when separate)."""

    total_bytes: int = Field(ge=0)
    used_bytes: int = Field(ge=0)
    available_bytes: int = Field(ge=0)
    attributed_bytes: int = Field(ge=0, description="container writable layers")


class InodeTotals(WireModel):
    """Inodes over the same mounts as ``disk``."""

    total: int = Field(ge=0)
    used: int = Field(ge=0)
    available: int = Field(ge=0)


class DockerTotals(WireModel):
    """Docker's disk usage (refreshed less often than the sample: it is costly to compute)."""

    image_bytes: int = Field(ge=0)
    build_cache_bytes: int = Field(ge=0)
    container_writable_bytes: int = Field(ge=0)


class NetworkTotals(WireModel):
    """Bytes received and sent since the previous sample (host interfaces, loopback excluded)."""

    rx_bytes: int = Field(ge=0)
    tx_bytes: int = Field(ge=0)


class Totals(WireModel):
    """One figure set per signal; a signal the agent could not read is null (see warnings)."""

    cpu: CpuTotals | None = None
    memory: MemoryTotals | None = None
    disk: DiskTotals | None = None
    inode: InodeTotals | None = None
    docker: DockerTotals | None = None
    network: NetworkTotals | None = None


class MountUsage(WireModel):
    """One mounted filesystem's space and inodes."""

    path: str = Field(max_length=500)
    device: str = Field(default="", max_length=500)
    fstype: str = Field(default="", max_length=50)
    total_bytes: int = Field(ge=0)
    used_bytes: int = Field(ge=0)
    available_bytes: int = Field(ge=0)
    inodes_total: int = Field(default=0, ge=0)
    inodes_used: int = Field(default=0, ge=0)
    inodes_available: int = Field(default=0, ge=0)


class ContainerUsage(WireModel):
    """One container's usage, attributed through its ``berth.*`` labels (null when unmanaged)."""

    container_id: str = Field(max_length=80)
    name: str = Field(default="", max_length=200)
    project_id: str | None = Field(default=None, max_length=40)
    environment_id: str | None = Field(default=None, max_length=40)
    resource_id: str | None = Field(default=None, max_length=40)
    deployment_id: str | None = Field(default=None, max_length=40)
    cpu_percent: float = Field(ge=0, description="since the previous sample; 100 = one core")
    memory_bytes: int = Field(ge=0)
    memory_limit_bytes: int | None = Field(default=None, ge=0)
    rx_bytes: int = Field(default=0, ge=0, description="since the previous sample")
    tx_bytes: int = Field(default=0, ge=0, description="since the previous sample")
    block_read_bytes: int = Field(default=0, ge=0, description="since the previous sample")
    block_write_bytes: int = Field(default=0, ge=0, description="since the previous sample")
    writable_bytes: int | None = Field(default=None, ge=0)
    pids: int | None = Field(default=None, ge=0)


class Sample(WireModel):
    """One sample of a server. ``sample_id`` is chosen by the agent and never reused, so the
    coordinator stores a resent sample once."""

    sample_id: str = Field(min_length=8, max_length=64)
    sequence: int = Field(ge=1, description="the agent's spool order; increases by sample")
    observed_at: datetime
    interval_seconds: float = Field(gt=0, le=3600)
    totals: Totals
    mounts: list[MountUsage] = Field(default_factory=list, max_length=64)
    containers: list[ContainerUsage] = Field(default_factory=list, max_length=500)
    warnings: list[str] = Field(default_factory=list, max_length=20)


def new_sample_id() -> str:
    """A fresh ``sample_id``: 48 bits of milliseconds, then 80 random bits (32 hex digits).

    Time first, like a version 7 UUID, so the coordinator's unique index on sample ids grows at
    its end instead of at random pages: with random ids its inserts slowed from ~55 to ~95 us a
    row as the table grew to 900,000 rows; time-ordered ones stayed at 55-70 us.
    """
    milliseconds = time.time_ns() // 1_000_000 % (1 << 48)
    return f"{milliseconds:012x}{secrets.token_hex(10)}"


class SampleBatch(WireModel):
    """Agent -> coordinator, unsolicited: the oldest undelivered samples in spool order.

    The agent sends one batch at a time and waits for ``samples_ack`` before deleting them from
    its spool and sending the next.
    """

    type: Literal["samples"] = "samples"
    id: int
    samples: list[Sample] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)


class SamplesAck(WireModel):
    """Coordinator -> agent: the batch ``re`` is stored durably (``duplicates`` were known)."""

    type: Literal["samples_ack"] = "samples_ack"
    id: int
    re: int
    stored: int = Field(ge=0)
    duplicates: int = Field(ge=0)


# ---------------------------------------------------------------------------- capacity


class CapacityInspect(WireModel):
    """Coordinator -> agent request: inspect disk, inodes, Docker, memory, CPU, Berth's dirs."""

    type: Literal["capacity_inspect"] = "capacity_inspect"
    id: int


class CapacityDisk(WireModel):
    """One mount, in Appaloft's ``servers.capacity.inspect/v1`` shape."""

    path: str
    mount: str
    size: int
    used: int
    available: int
    use_percent: float


class CapacityInodes(WireModel):
    """Inodes of one mount."""

    path: str
    mount: str
    used: int
    free: int
    use_percent: float


class CapacityDocker(WireModel):
    """Docker disk usage and what of it is reclaimable."""

    images_size: int
    reclaimable_images_size: int
    build_cache_size: int
    reclaimable_build_cache_size: int
    containers_size: int
    volumes_size: int


class CapacityMemory(WireModel):
    """Host memory."""

    total: int
    available: int
    used: int
    use_percent: float


class CapacityCpu(WireModel):
    """Host CPU."""

    logical_cores: int
    load_average1m: float
    load_average5m: float
    load_average15m: float


class RuntimeDirectory(WireModel):
    """One of Berth's directories on the server and its size."""

    path: str
    size: int | None = None
    detectable: bool


class CapacityContainer(WireModel):
    """A Berth-managed container and its writable layer size."""

    id: str
    name: str
    running: bool
    status: str
    writable_bytes: int | None = None
    deployment_id: str | None = None
    project_id: str | None = None
    environment_id: str | None = None
    resource_id: str | None = None
    serving: bool = False


class CapacityWorkspace(WireModel):
    """A deployment workspace (unpacked source) in the agent's state directory."""

    deployment_id: str
    path: str
    bytes: int
    active_marker: bool
    rollback_candidate_marker: bool


class ReclaimableEstimate(WireModel):
    """What a prune with default categories would free, by category."""

    stopped_containers_size: int
    dangling_images_size: int
    old_build_cache_size: int
    old_workspace_candidates_size: int
    total: int


class CapacityWarning(WireModel):
    """Something an operator should look at (``full-disk``, ``inodes-low``, ``memory-low``...)."""

    code: str
    message: str
    path: str | None = None
    mount: str | None = None
    resource: Literal["disk", "inode", "memory", "cpu", "docker"]


class CapacityReport(WireModel):
    """Agent -> coordinator reply to ``capacity_inspect``."""

    type: Literal["capacity_report"] = "capacity_report"
    id: int
    re: int
    inspected_at: datetime
    disk: list[CapacityDisk] = Field(default_factory=list, max_length=64)
    inodes: list[CapacityInodes] = Field(default_factory=list, max_length=64)
    docker: CapacityDocker | None = None
    memory: CapacityMemory
    cpu: CapacityCpu
    runtime_directories: dict[str, RuntimeDirectory] = Field(default_factory=dict)
    containers: list[CapacityContainer] = Field(default_factory=list, max_length=2000)
    workspaces: list[CapacityWorkspace] = Field(default_factory=list, max_length=2000)
    safe_reclaimable_estimate: ReclaimableEstimate
    warnings: list[CapacityWarning] = Field(default_factory=list, max_length=100)
    partial: bool = False


PruneCategory = Literal["stopped-containers", "dangling-images", "old-workspaces"]


class CapacityPrune(WireModel):
    """Coordinator -> agent request: dry-run or prune Berth-managed leftovers older than ``before``.

    ``protected_deployment_ids`` are rollback candidates the coordinator knows about; their
    containers, images and workspaces are never pruned.
    """

    type: Literal["capacity_prune"] = "capacity_prune"
    id: int
    dry_run: bool = True
    before: datetime | None = None
    categories: list[PruneCategory] = Field(min_length=1, max_length=3)
    protected_deployment_ids: list[str] = Field(default_factory=list, max_length=10000)
    output_limit: int = Field(default=200, ge=1, le=2000)


class PruneCandidate(WireModel):
    """One thing the prune looked at, what it did with it, and why."""

    id: str
    category: PruneCategory
    target: str
    updated_at: datetime | None = None
    size: int = 0
    action: Literal["matched", "pruned", "skipped", "excluded", "failed"]
    skipped_reason: str | None = None


class CapacityPruneResult(WireModel):
    """Agent -> coordinator reply to ``capacity_prune``."""

    type: Literal["capacity_prune_result"] = "capacity_prune_result"
    id: int
    re: int
    dry_run: bool
    pruned_at: datetime
    inspected_count: int = 0
    matched_count: int = 0
    pruned_count: int = 0
    skipped_count: int = 0
    excluded_count: int = 0
    reclaimed_bytes: int = 0
    omitted_candidate_count: int = 0
    candidates: list[PruneCandidate] = Field(default_factory=list, max_length=2000)
    warnings: list[str] = Field(default_factory=list, max_length=100)


MonitoringAgentMessage = SampleBatch | CapacityReport | CapacityPruneResult
MonitoringCoordinatorMessage = SamplesAck | CapacityInspect | CapacityPrune
MONITORING_AGENT_TYPES = message_types(MonitoringAgentMessage)
MONITORING_COORDINATOR_TYPES = message_types(MonitoringCoordinatorMessage)
