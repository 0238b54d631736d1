"""HTTP models of the runtime-monitoring samples list, rollup and prune routes."""

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, ConfigDict, Field

from shared.wire import WireModel

MonitoringScopeKind = Literal["server", "project", "environment", "resource", "deployment", "all"]


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class MonitoringQuery(WireModel):
    """Scope (nested ``scope.kind`` or flat ``scopeKind``), window and signals of a read."""

    model_config = ConfigDict(extra="forbid")

    scope_kind: MonitoringScopeKind = Field(
        validation_alias=_alias("scope.kind", "scopeKind", "scope_kind")
    )
    server_id: str | None = Field(
        default=None, max_length=40, validation_alias=_alias("scope.serverId", "serverId")
    )
    project_id: str | None = Field(
        default=None, max_length=40, validation_alias=_alias("scope.projectId", "projectId")
    )
    environment_id: str | None = Field(
        default=None,
        max_length=40,
        validation_alias=_alias("scope.environmentId", "environmentId"),
    )
    resource_id: str | None = Field(
        default=None, max_length=40, validation_alias=_alias("scope.resourceId", "resourceId")
    )
    deployment_id: str | None = Field(
        default=None,
        max_length=40,
        validation_alias=_alias("scope.deploymentId", "deploymentId"),
    )
    window_from: datetime | None = Field(
        default=None, validation_alias=_alias("window.from", "windowFrom", "from")
    )
    window_to: datetime | None = Field(
        default=None, validation_alias=_alias("window.to", "windowTo", "to")
    )
    signals: list[str] | str | None = Field(
        default=None,
        description="comma list or repeated: cpu, memory, disk, inode, docker, network",
    )


class SamplesQuery(MonitoringQuery):
    """``GET /runtime-monitoring/samples``."""

    limit: int = Field(default=300, ge=1, le=720)


class RollupQuery(MonitoringQuery):
    """``GET /runtime-monitoring/rollup``."""

    bucket: Literal["minute", "five-minute", "hour"]
    include_deployment_markers: bool = True
    include_top_contributors: bool = True


class Scope(WireModel):
    """Appaloft's scope object; ``all`` means every server the caller may see."""

    kind: MonitoringScopeKind
    server_id: str | None = None
    project_id: str | None = None
    environment_id: str | None = None
    resource_id: str | None = None
    deployment_id: str | None = None


class CpuFigures(WireModel):
    """CPU figures; averages over the point's samples (see docs/monitoring.md)."""

    logical_cores: float | None = None
    load_average1m: float | None = Field(default=None, alias="loadAverage1m")
    load_average5m: float | None = Field(default=None, alias="loadAverage5m")
    load_average15m: float | None = Field(default=None, alias="loadAverage15m")
    busy_percent: float | None = None
    container_cpu_percent: float | None = None


class MemoryFigures(WireModel):
    """Memory figures in bytes."""

    total_bytes: float | None = None
    used_bytes: float | None = None
    available_bytes: float | None = None
    container_used_bytes: float | None = None


class DiskFigures(WireModel):
    """Disk figures in bytes; ``readBytes``/``writeBytes`` are container block I/O per sample."""

    total_bytes: float | None = None
    used_bytes: float | None = None
    available_bytes: float | None = None
    attributed_bytes: float | None = None
    read_bytes: float | None = None
    write_bytes: float | None = None


class InodeFigures(WireModel):
    """Inode counts."""

    total: float | None = None
    used: float | None = None
    available: float | None = None


class DockerFigures(WireModel):
    """Docker disk usage in bytes."""

    image_bytes: float | None = None
    build_cache_bytes: float | None = None
    container_writable_bytes: float | None = None


class NetworkFigures(WireModel):
    """Bytes received and sent per sample interval."""

    rx_bytes: float | None = None
    tx_bytes: float | None = None


class TotalsBlock(WireModel):
    """The Appaloft totals block; a signal not requested or not available is absent (null)."""

    cpu: CpuFigures | None = None
    memory: MemoryFigures | None = None
    disk: DiskFigures | None = None
    inode: InodeFigures | None = None
    docker: DockerFigures | None = None
    network: NetworkFigures | None = None


class Retention(WireModel):
    """How far back raw samples reach."""

    raw_retention_hours: float
    retained_from: datetime | None = None
    retained_to: datetime | None = None


class MonitoringWarning(WireModel):
    """Something about the figures a reader should know (``missing-samples``...)."""

    code: str
    message: str
    signal: str | None = None
    scope: Scope | None = None


class MonitoringSourceError(WireModel):
    """A part of the answer the store could not provide."""

    source: str = "monitoring-store"
    code: str
    message: str
    retriable: bool = False


class ScopeEvidence(WireModel):
    """Which ids a sample's figures were attributed through."""

    scope: Scope
    server_id: str
    project_id: str | None = None
    environment_id: str | None = None
    resource_id: str | None = None
    deployment_id: str | None = None


class SampleLabels(WireModel):
    """Where the sample came from."""

    provider_key: str = "berth-agent"
    artifact_kind: str = "active-runtime"
    runtime_id: str | None = None


class SampleItem(WireModel):
    """One stored sample as seen through the requested scope."""

    sample_id: str
    observed_at: datetime
    collected_at: datetime
    interval_seconds: float
    scope_evidence: ScopeEvidence
    totals: TotalsBlock
    freshness: str
    partial: bool
    labels: SampleLabels
    warnings: list[MonitoringWarning]
    source_errors: list[MonitoringSourceError]


class SamplesList(WireModel):
    """``runtime-monitoring.samples.list/v1``."""

    schema_version: Literal["runtime-monitoring.samples.list/v1"] = (
        "runtime-monitoring.samples.list/v1"
    )
    scope: Scope
    from_: datetime = Field(alias="from")
    to: datetime
    generated_at: datetime
    freshness: Literal["live", "stale", "empty"]
    partial: bool
    retention: Retention
    samples: list[SampleItem]
    warnings: list[MonitoringWarning]
    source_errors: list[MonitoringSourceError]


class RollupPoint(WireModel):
    """One bucket of a series."""

    from_: datetime = Field(alias="from")
    to: datetime
    sample_count: int
    totals: TotalsBlock


class RollupSeries(WireModel):
    """One signal's points, oldest first; buckets without samples are left out."""

    signal: str
    points: list[RollupPoint]


class TopContributor(WireModel):
    """A child scope and its average figures over the window."""

    scope: Scope
    totals: TotalsBlock
    sample_count: int


class DeploymentMarker(WireModel):
    """A deployment of the scope that happened in the window (time correlation only)."""

    deployment_id: str
    resource_id: str
    environment_id: str
    observed_at: datetime
    status: str
    label: str
    correlation: Literal["time"] = "time"


class RollupResponse(WireModel):
    """``runtime-monitoring.rollup/v1``."""

    schema_version: Literal["runtime-monitoring.rollup/v1"] = "runtime-monitoring.rollup/v1"
    scope: Scope
    from_: datetime = Field(alias="from")
    to: datetime
    bucket: str
    generated_at: datetime
    freshness: Literal["live", "stale", "empty"]
    partial: bool
    retention: Retention
    series: list[RollupSeries]
    totals: TotalsBlock
    top_contributors: list[TopContributor]
    deployment_markers: list[DeploymentMarker]
    warnings: list[MonitoringWarning]
    source_errors: list[MonitoringSourceError]


class PruneRequest(WireModel):
    """``POST /runtime-monitoring/prune``: dry run by default; ``before`` overrides retention."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = True
    before: datetime | None = None


class PruneResponse(WireModel):
    """``runtime-monitoring.prune/v1``."""

    schema_version: Literal["runtime-monitoring.prune/v1"] = "runtime-monitoring.prune/v1"
    dry_run: bool
    before: datetime
    rollups_before: datetime
    matched_sample_count: int
    pruned_sample_count: int
    matched_rollup_count: int
    pruned_rollup_count: int
    pruned_at: datetime
