"""Server capacity routes: live inspect and safe prune, both answered by the server's agent."""

from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import Field

from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.api.schemas import ApiRequest, NoQuery
from coordinator.appkeys import REGISTRY_KEY
from coordinator.db import models
from coordinator.lookup import get_server
from coordinator.servers import capacity
from shared.errors import PlatformError
from shared.messages.monitoring import (
    CapacityContainer,
    CapacityDisk,
    CapacityDocker,
    CapacityInodes,
    CapacityInspect,
    CapacityMemory,
    CapacityPrune,
    CapacityPruneResult,
    CapacityReport,
    CapacityWarning,
    CapacityWorkspace,
    PruneCandidate,
    PruneCategory,
    RuntimeDirectory,
)
from shared.wire import WireModel

TAG = "servers"
INSPECT_TIMEOUT_SECONDS: Final = 30.0
# A real prune removes containers and images one by one; give it longer than an inspect.
PRUNE_TIMEOUT_SECONDS: Final = 120.0
ALL_CATEGORIES: Final[tuple[PruneCategory, ...]] = (
    "stopped-containers",
    "dangling-images",
    "old-workspaces",
)


class CapacityServer(WireModel):
    """The server the answer is about."""

    id: str
    name: str
    host: str | None
    port: int | None
    provider_key: str
    target_kind: str


class CapacityContainerView(CapacityContainer):
    """A Berth-managed container, in Appaloft's ``appaloftContainers`` item shape."""

    server_id: str
    destination_id: str | None = None
    artifact_kind: Literal["active-runtime", "stopped-runtime"]


class CpuView(WireModel):
    """Host CPU with Appaloft's ``loadAverage1m`` spelling (the wire model says ``1M``)."""

    logical_cores: int
    load_average1m: float = Field(alias="loadAverage1m")
    load_average5m: float = Field(alias="loadAverage5m")
    load_average15m: float = Field(alias="loadAverage15m")


class ReclaimableView(WireModel):
    """What a default prune would free (Appaloft's names, plus Berth's workspace name)."""

    stopped_containers_size: int
    dangling_images_size: int
    old_build_cache_size: int
    old_preview_workspace_candidates_size: int
    old_workspace_candidates_size: int
    total: int


class AppaloftRuntimeView(WireModel):
    """Berth's own directories under the reference's ``appaloftRuntime`` names.

    Appaloft's ``runtimeRoot`` has no Berth counterpart (containers live in Docker's data root,
    Berth's files all under ``stateRoot``); ``deploymentJournal`` is Berth's own addition.
    """

    state_root: RuntimeDirectory | None = None
    source_workspace: RuntimeDirectory | None = None
    deployment_journal: RuntimeDirectory | None = None

    @classmethod
    def of(cls, directories: dict[str, RuntimeDirectory]) -> "AppaloftRuntimeView":
        """Pick the known keys from the agent's report (an older agent may lack some)."""
        return cls(
            state_root=directories.get("stateRoot"),
            source_workspace=directories.get("sourceWorkspace"),
            deployment_journal=directories.get("deploymentJournal"),
        )


class CapacityInspectResponse(WireModel):
    """``servers.capacity.inspect/v1``."""

    schema_version: Literal["servers.capacity.inspect/v1"] = "servers.capacity.inspect/v1"
    server: CapacityServer
    inspected_at: datetime
    disk: list[CapacityDisk]
    inodes: list[CapacityInodes]
    docker: CapacityDocker | None
    memory: CapacityMemory
    cpu: CpuView
    appaloft_runtime: AppaloftRuntimeView
    appaloft_containers: list[CapacityContainerView]
    appaloft_workspaces: list[CapacityWorkspace]
    safe_reclaimable_estimate: ReclaimableView
    warnings: list[CapacityWarning]
    partial: bool


class CapacityPruneRequest(ApiRequest):
    """``POST /servers/{id}/capacity/prune``: a dry run unless ``dryRun`` is false."""

    dry_run: bool = True
    before: datetime | None = None
    categories: list[PruneCategory] = Field(
        default_factory=lambda: list(ALL_CATEGORIES), min_length=1, max_length=3
    )
    output_limit: int = Field(default=200, ge=1, le=2000)


class CapacityPruneSummary(WireModel):
    """Counters of a prune."""

    inspected_count: int
    matched_count: int
    pruned_count: int
    skipped_count: int
    excluded_count: int
    reclaimed_bytes: int
    reported_candidate_count: int
    omitted_candidate_count: int
    output_limit: int


class CapacityPruneResponse(WireModel):
    """``servers.capacity.prune/v1``."""

    schema_version: Literal["servers.capacity.prune/v1"] = "servers.capacity.prune/v1"
    server: CapacityServer
    before: datetime | None
    categories: list[PruneCategory]
    dry_run: bool
    pruned_at: datetime
    protected_deployment_count: int
    summary: CapacityPruneSummary
    candidates: list[PruneCandidate]
    warnings: list[CapacityWarning]


def prune_warning(text: str) -> CapacityWarning:
    """An agent's prune warning (a failed removal, as text) in the reference's warning shape."""
    # The agent writes "<category> <target>: <error>" for a failed removal, else the bare error
    # of listing containers/images; only workspaces are files on the disk, the rest is Docker's.
    category, _, rest = text.partition(" ")
    on_disk = category == "old-workspaces"
    target = rest.partition(":")[0] if category in ALL_CATEGORIES else None
    return CapacityWarning(
        code="prune-failed",
        message=text,
        path=target if on_disk else None,
        resource="disk" if on_disk else "docker",
    )


def _server(row: models.Server) -> CapacityServer:
    return CapacityServer(
        id=row.id,
        name=row.name,
        host=row.host,
        port=row.port,
        provider_key=row.provider_key,
        target_kind=row.target_kind,
    )


def inspect_view(row: models.Server, report: CapacityReport) -> CapacityInspectResponse:
    """Shape the agent's report as Appaloft's capacity document."""
    estimate = report.safe_reclaimable_estimate
    return CapacityInspectResponse(
        server=_server(row),
        inspected_at=report.inspected_at,
        disk=report.disk,
        inodes=report.inodes,
        docker=report.docker,
        memory=report.memory,
        cpu=CpuView.model_validate(report.cpu.model_dump(by_alias=False)),
        appaloft_runtime=AppaloftRuntimeView.of(report.runtime_directories),
        appaloft_containers=[
            CapacityContainerView(
                **c.model_dump(by_alias=False),
                server_id=row.id,
                artifact_kind="active-runtime" if c.running else "stopped-runtime",
            )
            for c in report.containers
        ],
        appaloft_workspaces=report.workspaces,
        safe_reclaimable_estimate=ReclaimableView(
            stopped_containers_size=estimate.stopped_containers_size,
            dangling_images_size=estimate.dangling_images_size,
            old_build_cache_size=estimate.old_build_cache_size,
            old_preview_workspace_candidates_size=estimate.old_workspace_candidates_size,
            old_workspace_candidates_size=estimate.old_workspace_candidates_size,
            total=estimate.total,
        ),
        warnings=report.warnings,
        partial=report.partial,
    )


@route(
    "GET",
    "/servers/{serverId}/capacity",
    summary="Inspect a server's disk, inodes, Docker, memory and CPU live through its agent",
    tag=TAG,
    permission="capacity:read",
    query=NoQuery,
    response=CapacityInspectResponse,
    errors=AGENT_ERRORS,
)
async def inspect(call: Call) -> CapacityInspectResponse:
    """``servers.capacity.inspect/v1``: 503 when the agent is offline, 504 when it is silent."""
    row = await get_server(call.actor, call.path["serverId"])
    session = call.request.app[REGISTRY_KEY].require(row.id)
    reply = await session.request(lambda i: CapacityInspect(id=i), INSPECT_TIMEOUT_SECONDS)
    if not isinstance(reply, CapacityReport):
        raise PlatformError(f"the agent answered capacity_inspect with {reply.type}")
    return inspect_view(row, reply)


@route(
    "POST",
    "/servers/{serverId}/capacity/prune",
    summary="Dry-run or prune Berth-managed leftovers (never volumes or rollback candidates)",
    tag=TAG,
    permission="capacity:prune",
    body=CapacityPruneRequest,
    response=CapacityPruneResponse,
    errors=AGENT_ERRORS,
)
async def prune(call: Call) -> CapacityPruneResponse:
    """``servers.capacity.prune/v1``; a real prune is audited, a dry run is not."""
    body = call.body(CapacityPruneRequest)
    row = await get_server(call.actor, call.path["serverId"])
    session = call.request.app[REGISTRY_KEY].require(row.id)
    protected = await capacity.protected_deployments(row.id)
    categories = list(dict.fromkeys(body.categories))
    reply = await session.request(
        lambda i: CapacityPrune(
            id=i,
            dry_run=body.dry_run,
            before=body.before,
            categories=categories,
            protected_deployment_ids=protected,
            output_limit=body.output_limit,
        ),
        INSPECT_TIMEOUT_SECONDS if body.dry_run else PRUNE_TIMEOUT_SECONDS,
    )
    if not isinstance(reply, CapacityPruneResult):
        raise PlatformError(f"the agent answered capacity_prune with {reply.type}")
    answer = CapacityPruneResponse(
        server=_server(row),
        before=body.before,
        categories=categories,
        dry_run=reply.dry_run,
        pruned_at=reply.pruned_at,
        protected_deployment_count=len(protected),
        summary=CapacityPruneSummary(
            inspected_count=reply.inspected_count,
            matched_count=reply.matched_count,
            pruned_count=reply.pruned_count,
            skipped_count=reply.skipped_count,
            excluded_count=reply.excluded_count,
            reclaimed_bytes=reply.reclaimed_bytes,
            reported_candidate_count=len(reply.candidates),
            omitted_candidate_count=reply.omitted_candidate_count,
            output_limit=body.output_limit,
        ),
        candidates=reply.candidates,
        warnings=[prune_warning(w) for w in reply.warnings],
    )
    if not reply.dry_run:
        # The agent already acted; the audit row records what it did, after the fact.
        await capacity.record_prune(
            call.actor,
            call.request_id,
            row.id,
            {
                "categories": categories,
                "before": body.before.isoformat() if body.before else None,
                "prunedCount": reply.pruned_count,
                "reclaimedBytes": reply.reclaimed_bytes,
                "protectedDeploymentCount": len(protected),
                "prunedAt": datetime.now(UTC).isoformat(),
            },
        )
    return answer
