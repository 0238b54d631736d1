"""Metric paths of a sample per scope, and bucket accumulation (rollups and minute reads)."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

Bucket = Literal["minute", "five-minute", "hour"]
ScopeKind = Literal["server", "project", "environment", "resource", "deployment"]

BUCKET_SECONDS: Final[dict[str, int]] = {"minute": 60, "five-minute": 300, "hour": 3600}
STORED_BUCKETS: Final = ("five-minute", "hour")
CONTAINER_SCOPES: Final = ("project", "environment", "resource", "deployment")
_ATTRIBUTION_KEY: Final = {
    "project": "projectId",
    "environment": "environmentId",
    "resource": "resourceId",
    "deployment": "deploymentId",
}

# Signal -> the figures a rollup keeps for it. Host figures come from the server's totals;
# for container scopes only the container sums exist (see container_metrics).
SIGNAL_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "cpu": (
        "logicalCores",
        "loadAverage1m",
        "loadAverage5m",
        "loadAverage15m",
        "busyPercent",
        "containerCpuPercent",
    ),
    "memory": ("totalBytes", "usedBytes", "availableBytes", "containerUsedBytes"),
    "disk": (
        "totalBytes",
        "usedBytes",
        "availableBytes",
        "attributedBytes",
        "readBytes",
        "writeBytes",
    ),
    "inode": ("total", "used", "available"),
    "docker": ("imageBytes", "buildCacheBytes", "containerWritableBytes"),
    "network": ("rxBytes", "txBytes"),
}
SIGNALS: Final = tuple(SIGNAL_FIELDS)
# Percent-of-host figures are averaged (not added) when several servers make up one point.
AVERAGED_PATHS: Final = frozenset({"cpu.busyPercent"})


def floor_time(moment: datetime, bucket: str) -> datetime:
    """Return the start of the ``bucket`` containing ``moment`` (UTC, epoch-aligned)."""
    size = BUCKET_SECONDS[bucket]
    epoch = int(moment.astimezone(UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % size, UTC)


def bucket_end(start: datetime, bucket: str) -> datetime:
    """Return the end (exclusive) of the bucket starting at ``start``."""
    return start + timedelta(seconds=BUCKET_SECONDS[bucket])


# The wire models' camelCase generator spells load_average1m "loadAverage1M"; the Appaloft
# totals block (and every path here) says "loadAverage1m".
_APPALOFT_NAMES: Final = {f"loadAverage{n}M": f"loadAverage{n}m" for n in (1, 5, 15)}


def host_metrics(totals: Mapping[str, Any]) -> dict[str, float]:
    """Flatten a sample's stored (camelCase) totals into ``signal.figure`` paths."""
    flat: dict[str, float] = {}
    for signal, figures in totals.items():
        if not isinstance(figures, dict):
            continue  # a signal the agent could not read is null
        for name, value in figures.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                path = _PATHS.get((signal, name))
                if path is None:  # built once per name: this runs for every sample
                    path = _PATHS[(signal, name)] = f"{signal}.{_APPALOFT_NAMES.get(name, name)}"
                flat[path] = float(value)
    return flat


_PATHS: dict[tuple[str, str], str] = {}


def container_metrics(containers: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Sum the usage of ``containers`` (stored camelCase dicts) into metric paths."""
    sums = {
        "cpu.containerCpuPercent": 0.0,
        "memory.containerUsedBytes": 0.0,
        "network.rxBytes": 0.0,
        "network.txBytes": 0.0,
        "disk.readBytes": 0.0,
        "disk.writeBytes": 0.0,
        "disk.attributedBytes": 0.0,
        "containers.count": 0.0,
    }
    for container in containers:
        sums["cpu.containerCpuPercent"] += float(container.get("cpuPercent") or 0)
        sums["memory.containerUsedBytes"] += float(container.get("memoryBytes") or 0)
        sums["network.rxBytes"] += float(container.get("rxBytes") or 0)
        sums["network.txBytes"] += float(container.get("txBytes") or 0)
        sums["disk.readBytes"] += float(container.get("blockReadBytes") or 0)
        sums["disk.writeBytes"] += float(container.get("blockWriteBytes") or 0)
        sums["disk.attributedBytes"] += float(container.get("writableBytes") or 0)
        sums["containers.count"] += 1.0
    return sums


def scope_containers(
    containers: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """Group a sample's trusted containers by every (scope kind, scope id) they belong to."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for container in containers:
        if not container.get("attributionTrusted", False):
            continue  # unverified ids never feed another tenant's figures
        for kind in CONTAINER_SCOPES:
            scope_id = container.get(_ATTRIBUTION_KEY[kind])
            if isinstance(scope_id, str) and scope_id:
                groups.setdefault((kind, scope_id), []).append(container)
    return groups


def containers_of(
    containers: Iterable[Mapping[str, Any]], kind: str, scope_id: str
) -> list[Mapping[str, Any]]:
    """The trusted containers of one scope in a sample."""
    return scope_containers(containers).get((kind, scope_id), [])


RollupKey = tuple[str, datetime, str, str, str]  # bucket, start, scope kind, scope id, server id


@dataclass
class Accumulator:
    """Sample count, sums and maxima of one scope over one bucket."""

    sample_count: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    maxima: dict[str, float] = field(default_factory=dict)

    def add(self, metrics: Mapping[str, float]) -> None:
        """Add one sample's figures (a hot loop of the rollup job: kept plain)."""
        self.sample_count += 1
        sums, maxima = self.sums, self.maxima
        for path, value in metrics.items():
            if path in sums:
                sums[path] += value
                if value > maxima[path]:
                    maxima[path] = value
            else:
                sums[path] = value
                maxima[path] = value

    def merge(self, other: "Accumulator") -> None:
        """Fold another accumulator of the same key into this one."""
        self.sample_count += other.sample_count
        for path, value in other.sums.items():
            self.sums[path] = self.sums.get(path, 0.0) + value
        for path, value in other.maxima.items():
            self.maxima[path] = max(self.maxima.get(path, value), value)


def accumulate(
    rows: Iterable[Mapping[str, Any]], buckets: Iterable[str]
) -> dict[RollupKey, Accumulator]:
    """Accumulate raw rows (server_id, observed_at, totals, containers) per bucket and scope."""
    return accumulate_into({}, rows, buckets)


def accumulate_into(
    result: dict[RollupKey, Accumulator], rows: Iterable[Mapping[str, Any]], buckets: Iterable[str]
) -> dict[RollupKey, Accumulator]:
    """Add raw rows (server_id, observed_at, totals, containers) to ``result``; return it.

    Each sample's figures are computed once and added to every bucket.
    """
    add_folded(result, (fold(row) for row in rows), buckets)
    return result


# One sample's figures per scope, ready to add: (server id, observed epoch seconds,
# [(scope kind, scope id, metrics)], the server's own first). The writer folds samples before
# their commit (in slices) and adds them to the pending deltas right after it.
FoldedSample = tuple[str, int, list[tuple[str, str, dict[str, float]]]]


def fold(row: Mapping[str, Any]) -> FoldedSample:
    """The figures a raw row (server_id, observed_at, totals, containers) adds per scope."""
    return fold_sample(str(row["server_id"]), row["observed_at"], row["totals"], row["containers"])


def fold_sample(
    server_id: str,
    observed_at: datetime,
    totals: Mapping[str, Any],
    containers: Iterable[Mapping[str, Any]],
) -> FoldedSample:
    """The figures one sample adds per scope: its server's host figures, and the summed usage
    of its trusted containers for every scope they belong to."""
    per_scope: list[tuple[str, str, dict[str, float]]] = [
        ("server", server_id, host_metrics(totals))
    ]
    for (kind, scope_id), members in scope_containers(containers).items():
        per_scope.append((kind, scope_id, container_metrics(members)))
    return server_id, int(observed_at.timestamp()), per_scope


def add_folded(
    result: dict[RollupKey, Accumulator], folded: Iterable[FoldedSample], buckets: Iterable[str]
) -> None:
    """Add folded samples to ``result``'s accumulators of every bucket they fall in."""
    sizes = [(bucket, BUCKET_SECONDS[bucket]) for bucket in set(buckets)]
    starts: dict[int, datetime] = {}  # one datetime per bucket start, not one per sample
    for server_id, epoch, per_scope in folded:
        for bucket, size in sizes:
            floor = epoch - epoch % size
            start = starts.get(floor)
            if start is None:
                start = starts[floor] = datetime.fromtimestamp(floor, UTC)
            for kind, scope_id, metrics in per_scope:
                key = (bucket, start, kind, scope_id, server_id)
                found = result.get(key)
                if found is None:
                    found = result[key] = Accumulator()
                found.add(metrics)
