"""Runtime usage attribution (``runtime-usage.inspect/v1``) from the newest sample per server.

Nothing here asks an agent anything: usage is read from ``RuntimeSample`` rows, so an offline
server still answers with its last known figures, flagged ``partial`` with a source error.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import Field, SerializerFunctionWrapHandler, WithJsonSchema, model_serializer

from coordinator.db.monitoring_models import RuntimeSample
from coordinator.monitoring.scopes import live_window
from shared.messages.monitoring import ContainerUsage, Totals
from shared.wire import WireModel

MonitoringScopeKind = Literal["server", "project", "environment", "resource", "deployment"]
SCOPE_KINDS: Final[tuple[MonitoringScopeKind, ...]] = (
    "server",
    "project",
    "environment",
    "resource",
    "deployment",
)
# The container attribute (from its ``berth.*`` label) that ties it to each non-server scope.
CONTAINER_FIELD: Final = {
    "project": "project_id",
    "environment": "environment_id",
    "resource": "resource_id",
    "deployment": "deployment_id",
}

# The wire says ``loadAverage1M`` (pydantic's camel case); Appaloft says ``loadAverage1m``.
_APPALOFT_NAMES: Final[dict[str, str]] = {
    f"loadAverage{n}M": f"loadAverage{n}m" for n in (1, 5, 15)
}


def _totals_schema() -> dict[str, Any]:
    # Documented as Appaloft's nested blocks (each key optional: a signal the agent could not
    # read is left out) rather than as a free-form map, so clients see the field names.
    blocks = Totals.model_json_schema(by_alias=True, mode="serialization")["$defs"]
    properties: dict[str, Any] = {}
    for signal, field in Totals.model_fields.items():
        block = blocks[field.annotation.__args__[0].__name__]  # type: ignore[union-attr]
        properties[signal] = {
            "type": "object",
            "properties": {
                _APPALOFT_NAMES.get(name, name): {"type": "number"} for name in block["properties"]
            },
        }
    return {"type": "object", "properties": properties}


# Nested like the Appaloft totals block: ``{"cpu": {"containerCpuPercent": 12.5}, ...}``.
TotalsMap = Annotated[dict[str, dict[str, float]], WithJsonSchema(_totals_schema())]


class MonitoringScope(WireModel):
    """Appaloft's scope object: a kind and the one id that kind needs."""

    kind: MonitoringScopeKind
    server_id: str | None = None
    project_id: str | None = None
    environment_id: str | None = None
    resource_id: str | None = None
    deployment_id: str | None = None

    # No return annotation on purpose: pydantic would document the annotation (a free-form
    # dict) instead of the model's own fields.
    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # Appaloft's scope names only its own id: ``{"kind": "server", "serverId": "..."}``.
        dumped: dict[str, Any] = handler(self)
        return {key: value for key, value in dumped.items() if value is not None}

    @property
    def target_id(self) -> str:
        """The id of the scope's own kind (validated to be present by ``make_scope``)."""
        return str(getattr(self, f"{self.kind}_id") or "")


def make_scope(kind: MonitoringScopeKind, target_id: str) -> MonitoringScope:
    """A scope whose ``<kind>Id`` is ``target_id``."""
    return MonitoringScope.model_validate({"kind": kind, f"{kind}_id": target_id})


class UsageSourceError(WireModel):
    """Why part of an answer is missing (``runtime-target``: the server itself)."""

    source: str = "runtime-target"
    code: str
    message: str
    retriable: bool
    server_id: str | None = None


class UsageWarning(WireModel):
    """Something about the figures a reader should know."""

    code: str
    message: str
    scope: MonitoringScope | None = None
    resource: str | None = None


class Evidence(WireModel):
    """How a container was attributed: by which label."""

    source: Literal["label"] = "label"
    key: str


class UsageGroup(WireModel):
    """Container sums of one project, environment, resource or deployment."""

    scope: MonitoringScope
    name: str | None = None
    ownership: Literal["attributed"] = "attributed"
    totals: TotalsMap
    current_deployment_id: str | None = None
    current_runtime_id: str | None = None
    artifact_count: int
    warnings: list[UsageWarning] = Field(default_factory=list)


class Artifact(WireModel):
    """One running container (``active-runtime``) and the labels that attribute it."""

    kind: Literal["active-runtime"] = "active-runtime"
    ownership: Literal["attributed", "unattributed"]
    server_id: str
    project_id: str | None
    environment_id: str | None
    resource_id: str | None
    deployment_id: str | None
    destination_id: str | None = None
    runtime_id: str
    name: str
    bytes: int | None
    inode_count: int | None = None
    cpu_percent: float
    memory_bytes: int
    observed_at: datetime
    evidence: list[Evidence]
    reclaimable: Literal["no"] = "no"
    reclaim_blocked_reason: str | None = "active-runtime"
    warnings: list[UsageWarning] = Field(default_factory=list)


class UsageInspect(WireModel):
    """``runtime-usage.inspect/v1``."""

    schema_version: Literal["runtime-usage.inspect/v1"] = "runtime-usage.inspect/v1"
    scope: MonitoringScope
    mode: Literal["current"] = "current"
    generated_at: datetime
    observed_at: datetime | None
    freshness: Literal["live", "stale", "unavailable"]
    partial: bool
    totals: TotalsMap
    by_project: list[UsageGroup]
    by_environment: list[UsageGroup]
    by_resource: list[UsageGroup]
    by_deployment: list[UsageGroup]
    artifacts: list[Artifact]
    warnings: list[UsageWarning]
    source_errors: list[UsageSourceError]


@dataclass(frozen=True)
class ServerReading:
    """What usage knows of one server: its newest sample (if any) and whether it is online."""

    server_id: str
    server_name: str
    online: bool
    sample: RuntimeSample | None


def model_host_totals(totals: Totals) -> TotalsMap:
    """A sample's totals as a nested number map (null signals left out)."""
    shaped: TotalsMap = {}
    for signal, block in totals.model_dump(by_alias=True, exclude_none=True).items():
        if isinstance(block, dict):
            shaped[signal] = {
                _APPALOFT_NAMES.get(str(k), str(k)): float(v)
                for k, v in block.items()
                if isinstance(v, int | float)
            }
    return shaped


def host_totals(totals: dict[str, Any]) -> TotalsMap:
    """A stored sample's totals as a nested number map (null signals left out)."""
    # Through the wire model, so rows stored with either field spelling read the same.
    return model_host_totals(Totals.model_validate(totals))


@dataclass(frozen=True)
class StoredContainer:
    """A stored sample's container and whether ingest trusted its attribution.

    ``usage`` carries the labels only when trusted; ``claimed`` keeps the label keys an
    untrusted container carried, for the warning that says why it is not attributed.
    """

    usage: ContainerUsage
    trusted: bool
    claimed: tuple[str, ...] = ()


def stored_containers(rows: Iterable[dict[str, Any]]) -> list[StoredContainer]:
    """A stored sample's containers, parsed (either field spelling).

    Ingest marks each container ``attributionTrusted`` after checking its labels against the
    coordinator's own rows. Only ``true`` is trusted (a row without the flag is not): an
    untrusted container keeps counting for its server but is stripped of its labels, so a
    misreporting agent cannot add figures to another scope.
    """
    parsed: list[StoredContainer] = []
    for row in rows:
        container = ContainerUsage.model_validate(row)
        if row.get("attributionTrusted") is True:
            parsed.append(StoredContainer(container, trusted=True))
            continue
        claimed = tuple(k for k, f in CONTAINER_FIELD.items() if getattr(container, f))
        stripped = container.model_copy(update={f: None for f in CONTAINER_FIELD.values()})
        parsed.append(StoredContainer(stripped, trusted=False, claimed=claimed))
    return parsed


def container_totals(containers: Iterable[ContainerUsage]) -> TotalsMap:
    """Sums over containers, named like the host totals they are part of."""
    cpu = memory = writable = rx = tx = 0.0
    count = 0
    for container in containers:
        count += 1
        cpu += container.cpu_percent
        memory += container.memory_bytes
        writable += container.writable_bytes or 0
        rx += container.rx_bytes
        tx += container.tx_bytes
    return {
        "cpu": {"containerCpuPercent": cpu},
        "memory": {"containerUsedBytes": memory},
        "disk": {"attributedBytes": writable},
        "network": {"rxBytes": rx, "txBytes": tx},
        "containers": {"count": float(count)},
    }


def add_totals(into: TotalsMap, more: TotalsMap) -> TotalsMap:
    """Add ``more`` into ``into`` metric by metric (for scopes spanning several servers)."""
    for signal, block in more.items():
        target = into.setdefault(signal, {})
        for metric, value in block.items():
            target[metric] = target.get(metric, 0.0) + value
    return into


def in_scope(container: ContainerUsage, scope: MonitoringScope) -> bool:
    """Whether a sampled container belongs to a non-server scope (by its label)."""
    if scope.kind == "server":
        return True
    return bool(getattr(container, CONTAINER_FIELD[scope.kind]) == scope.target_id)


def is_fresh(sample: RuntimeSample, now: datetime) -> bool:
    """A sample is live while younger than a few sampling intervals (``live_window``)."""
    age = now - sample.observed_at
    return age <= timedelta(seconds=live_window(sample.interval_seconds))


async def latest_sample(server_id: str) -> RuntimeSample | None:
    """The newest stored sample of a server (uses the ``(server_id, observed_at)`` index)."""
    return await RuntimeSample.filter(server_id=server_id).order_by("-observed_at", "-id").first()


def _groups(
    containers: Sequence[ContainerUsage],
    kind: Literal["project", "environment", "resource", "deployment"],
    names: dict[str, str],
) -> list[UsageGroup]:
    field = CONTAINER_FIELD[kind]
    members: dict[str, list[ContainerUsage]] = {}
    for container in containers:
        owner = getattr(container, field)
        if isinstance(owner, str) and owner:
            members.setdefault(owner, []).append(container)
    groups: list[UsageGroup] = []
    for owner, items in sorted(members.items()):
        # The newest deployment id sorts last: ids are time-ordered by construction.
        deployment_ids = sorted({c.deployment_id for c in items if c.deployment_id})
        current = deployment_ids[-1] if deployment_ids else None
        runtime = next((c.container_id for c in items if c.deployment_id == current), None)
        groups.append(
            UsageGroup(
                scope=make_scope(kind, owner),
                name=names.get(owner),
                totals=container_totals(items),
                current_deployment_id=current,
                current_runtime_id=runtime,
                artifact_count=len(items),
            )
        )
    return groups


def _artifact(server_id: str, observed_at: datetime, stored: StoredContainer) -> Artifact:
    container = stored.usage
    evidence = [
        Evidence(key=f"berth.{kind}-id")
        for kind, field in CONTAINER_FIELD.items()
        if getattr(container, field)
    ]
    warnings: list[UsageWarning] = []
    if stored.claimed:
        labels = ", ".join(f"berth.{kind}-id" for kind in stored.claimed)
        warnings.append(
            UsageWarning(
                code="attribution-unverified",
                message=f"its labels ({labels}) could not be verified against this "
                "organization's resources; it counts only in the server's totals",
            )
        )
    return Artifact(
        ownership="attributed" if stored.trusted and evidence else "unattributed",
        server_id=server_id,
        project_id=container.project_id,
        environment_id=container.environment_id,
        resource_id=container.resource_id,
        deployment_id=container.deployment_id,
        runtime_id=container.container_id,
        name=container.name,
        bytes=container.writable_bytes,
        cpu_percent=container.cpu_percent,
        memory_bytes=container.memory_bytes,
        observed_at=observed_at,
        evidence=evidence,
        warnings=warnings,
    )


def build_usage(
    scope: MonitoringScope,
    readings: Sequence[ServerReading],
    names: dict[str, str],
    *,
    include_artifacts: bool = True,
    include_warnings: bool = True,
    now: datetime | None = None,
) -> UsageInspect:
    """Assemble the usage answer from the newest sample of each relevant server."""
    now = now or datetime.now(UTC)
    errors: list[UsageSourceError] = []
    warnings: list[UsageWarning] = []
    containers: list[ContainerUsage] = []
    artifacts: list[Artifact] = []
    totals: TotalsMap = {}
    observed: list[datetime] = []
    stale = False
    for reading in readings:
        sample = reading.sample
        if not reading.online:
            errors.append(
                UsageSourceError(
                    code="agent-offline",
                    message=f"server {reading.server_name} is offline; figures are its last sample",
                    retriable=True,
                    server_id=reading.server_id,
                )
            )
        if sample is None:
            errors.append(
                UsageSourceError(
                    code="no-samples",
                    message=f"server {reading.server_name} has sent no usage sample yet",
                    retriable=True,
                    server_id=reading.server_id,
                )
            )
            continue
        observed.append(sample.observed_at)
        if not is_fresh(sample, now):
            stale = True
        # Only trusted attribution places a container in a project/environment/resource/
        # deployment scope; a server scope lists all of its containers.
        mine = [
            c
            for c in stored_containers(sample.containers)
            if scope.kind == "server" or (c.trusted and in_scope(c.usage, scope))
        ]
        containers.extend(c.usage for c in mine)
        if include_artifacts:
            artifacts.extend(_artifact(reading.server_id, sample.observed_at, c) for c in mine)
        unverified = sum(1 for c in mine if c.claimed)
        if unverified and include_warnings:
            warnings.append(
                UsageWarning(
                    code="attribution-unverified",
                    message=f"{unverified} container(s) on server {reading.server_name} carry "
                    "berth labels that could not be verified against this organization's "
                    "resources; they are left out of every project, environment, resource and "
                    "deployment figure",
                    scope=scope,
                )
            )
        if scope.kind == "server":
            add_totals(totals, host_totals(sample.totals))
            add_totals(totals, {"containers": {"count": float(len(mine))}})
        else:
            add_totals(totals, container_totals(c.usage for c in mine))
        if include_warnings:
            warnings.extend(
                UsageWarning(code="partial-diagnostic", message=text, scope=scope)
                for text in sample.warnings
            )
    if scope.kind != "server" and not totals:
        totals = container_totals([])
    freshness: Literal["live", "stale", "unavailable"]
    freshness = "unavailable" if not observed else ("stale" if stale else "live")
    return UsageInspect(
        scope=scope,
        generated_at=now,
        observed_at=min(observed) if observed else None,
        freshness=freshness,
        partial=bool(errors) or freshness != "live",
        totals=totals,
        by_project=_groups(containers, "project", names),
        by_environment=_groups(containers, "environment", names),
        by_resource=_groups(containers, "resource", names),
        by_deployment=_groups(containers, "deployment", names),
        artifacts=artifacts,
        warnings=warnings if include_warnings else [],
        source_errors=errors,
    )
