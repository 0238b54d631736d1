"""Queued samples in their storable form: what the writer needs, without the wire models.

A sample waits in the writer's queue for up to a write cycle (about half a second at 2,000
samples/s, a thousand samples). As wire models, each is some 35 objects the cyclic garbage
collector tracks (every model and its field set, lists, time zones), and every young-generation
collection walked all of them: pauses of 50-70 ms for dashboard requests to wait out. Prepared
at arrival instead, a sample is three tracked objects (this record, its totals and its list
of containers; dicts of plain values are not tracked). The wire model is kept only for a
sample that an observer asked for (thresholds watching its server or its containers).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import TypeAdapter

from shared.messages.monitoring import ContainerUsage, MountUsage, Sample

# Mounts go straight to JSON text (never looked at); containers to dicts (their attribution is
# checked and completed before they are stored).
_MOUNTS: Final = TypeAdapter(list[MountUsage])
_CONTAINERS: Final = TypeAdapter(list[ContainerUsage])


@dataclass(frozen=True, slots=True)
class PreparedSample:
    """One received sample as the writer stores it (JSON-mode parts, camelCase keys)."""

    sample_id: str
    sequence: int
    observed_at: datetime
    interval_seconds: float
    totals: dict[str, Any]
    containers: list[dict[str, Any]]
    mounts_json: str
    warnings: list[str]
    wire: Sample | None  # the received model, kept only when an observer wants it


def prepare(sample: Sample, *, keep_wire: bool = True) -> PreparedSample:
    """The storable form of ``sample``."""
    return PreparedSample(
        sample_id=sample.sample_id,
        sequence=sample.sequence,
        # UTC's own tzinfo: the parsed one is an object of its own per sample.
        observed_at=sample.observed_at.astimezone(UTC),
        interval_seconds=sample.interval_seconds,
        totals=sample.totals.model_dump(mode="json", by_alias=True),
        containers=_CONTAINERS.dump_python(sample.containers, mode="json", by_alias=True),
        mounts_json=_MOUNTS.dump_json(sample.mounts, by_alias=True).decode(),
        warnings=list(sample.warnings),
        wire=sample if keep_wire else None,
    )


def container_ids(samples: list[PreparedSample]) -> tuple[set[str], set[str]]:
    """The resource and deployment ids the samples' containers name."""
    resources: set[str] = set()
    deployments: set[str] = set()
    for sample in samples:
        for container in sample.containers:
            if resource_id := container.get("resourceId"):
                resources.add(resource_id)
            if deployment_id := container.get("deploymentId"):
                deployments.add(deployment_id)
    return resources, deployments
