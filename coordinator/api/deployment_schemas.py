"""Request and response models of the deployment, recovery and runtime-control routes."""

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from coordinator.api.deployment_views import (
    DependencyBindingReference,
    DependencyBindingsSection,
    EnvironmentRef,
    EnvironmentSnapshot,
    ProjectRef,
    ResourceRef,
    RuntimePlan,
    ServerRef,
)
from coordinator.api.schemas import ApiRequest
from coordinator.deployments.store import DeploymentStatus
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.wire import WireModel

_ID = Field(min_length=1, max_length=40)


def _as_list(value: Any) -> Any:
    """``?statuses=a&statuses=b`` arrives as a list, ``?statuses=a,b`` or one value as text."""
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return value


# ---- plan ------------------------------------------------------------------------------------


class DeploymentTarget(ApiRequest):
    """The four ids that name what to deploy where (plan query and create body)."""

    project_id: str = _ID
    environment_id: str = _ID
    resource_id: str = _ID
    server_id: str = _ID


class PlanContext(WireModel):
    """``deployments.plan/v1`` context."""

    project_id: str
    environment_id: str
    resource_id: str
    server_id: str
    destination_id: str | None = None
    project_name: str
    environment_name: str
    resource_name: str
    server_name: str


class Readiness(WireModel):
    """Whether a deployment can be created now, and why not."""

    status: Literal["ready", "blocked"]
    ready: bool
    reason_codes: list[str]


class FixAction(WireModel):
    """An operation that resolves a plan issue (``profileField``: the field it sets)."""

    kind: Literal["query", "command"]
    target_operation: str
    label: str
    profile_field: str | None
    docs_anchor: str | None = None
    safe_by_default: bool


class PlanEvidence(WireModel):
    """A value the planner observed behind an issue (``label``: the field, ``source``: whose)."""

    kind: str
    label: str
    value: str
    source: str


class PlanIssue(WireModel):
    """A warning or blocking reason of a plan (Appaloft's issue shape, trimmed)."""

    code: str
    reason_code: str
    category: Literal["blocked", "warning"]
    phase: str
    message: str
    recommendation: str | None = None
    evidence: list[PlanEvidence] = Field(default_factory=list)
    affected_profile_field: str | None = None
    related_entity_id: str | None = None
    related_entity_type: str | None = None
    fix_path: list[FixAction] = Field(default_factory=list)
    # Berth has no overrides: a blocked plan cannot be forced, so this list stays empty.
    override_path: list[FixAction] = Field(default_factory=list)


class PlanSource(WireModel):
    """The resolved source."""

    kind: str | None
    display_name: str | None
    locator: str | None
    image_name: str | None
    image_tag: str | None
    archive_id: str | None
    dockerfile_path: str | None
    reasoning: list[str]


class PlanPlanner(WireModel):
    """Which planner and strategy apply."""

    planner_key: str
    support_tier: str
    build_strategy: str | None
    packaging_mode: str | None
    target_kind: str
    target_provider_key: str


class PlanArtifact(WireModel):
    """What the agent will run (or build)."""

    kind: str | None
    runtime_artifact_kind: str
    runtime_artifact_intent: str | None
    image: str | None
    metadata: dict[str, Any]


class PlanCommand(WireModel):
    """A command the runtime will execute."""

    kind: str
    command: str
    source: str


class PlanNetwork(WireModel):
    """Network profile as planned, plus the generated edge hostname."""

    internal_port: int | None
    upstream_protocol: str
    exposure_mode: str
    host_port: int | None
    target_service_name: str | None
    hostnames: list[str]


class PlanHealth(WireModel):
    """Health check as planned."""

    enabled: bool
    kind: str
    path: str
    port: int | None


class NextAction(WireModel):
    """A suggested follow-up operation."""

    kind: Literal["query", "command"]
    target_operation: str
    label: str
    safe_by_default: bool
    blocked_reason_code: str | None = None


class PlanAccess(WireModel):
    """How the deployment will be reached: Berth's generated hostname on the edge proxy."""

    # Berth's edge serves only hostnames it generates from the edge domain, over plain HTTP
    # (Caddy's automatic HTTPS is off); custom domains are issue 15.
    route_source: Literal["generated-default"] | None
    hostname: str | None
    scheme: Literal["http"] | None
    route_count: int
    route_group_count: int


class PlanStorageVolume(WireModel):
    """A volume the deployment mounts and where it lives."""

    storage_volume_id: str
    name: str
    kind: Literal["named-volume", "bind-mount"]
    destination_path: str
    mount_mode: Literal["read-write", "read-only"]
    server_id: str | None = Field(description="the volume's server; null until first deployed")
    placement: Literal["on-target-server", "placed-by-this-deployment", "other-server"]


class PlanStorage(WireModel):
    """Berth's: the volumes mounted and the rollout strategy that applies to them."""

    rollout_strategy: Literal["blue-green", "recreate"]
    downtime: bool = Field(description="recreate stops the old containers before the start")
    summary: str
    volumes: list[PlanStorageVolume]


class PlanResponse(WireModel):
    """``deployments.plan/v1``."""

    schema_version: Literal["deployments.plan/v1"] = "deployments.plan/v1"
    context: PlanContext
    readiness: Readiness
    source: PlanSource
    planner: PlanPlanner
    artifact: PlanArtifact
    commands: list[PlanCommand]
    network: PlanNetwork
    health: PlanHealth
    access: PlanAccess
    storage: PlanStorage
    # The bindings the deployment would be given (``blocked`` when the plan refuses one).
    dependency_bindings: DependencyBindingsSection
    warnings: list[PlanIssue]
    unsupported_reasons: list[PlanIssue]
    next_actions: list[NextAction]
    generated_at: datetime


# ---- items, logs, events ---------------------------------------------------------------------


class DeploymentItem(WireModel):
    """A deployment as lists and ``show`` return it (snapshot secrets read ``****``)."""

    id: str
    project_id: str
    environment_id: str
    resource_id: str
    server_id: str
    destination_id: str | None
    status: DeploymentStatus
    trigger_kind: str
    source_deployment_id: str | None
    rollback_candidate_deployment_id: str | None
    rollback_of_deployment_id: str | None
    runtime_plan: RuntimePlan | None
    environment_snapshot: EnvironmentSnapshot | None
    artifact: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    log_count: int
    event_count: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    archived_at: datetime | None
    # The dependency bindings this deployment's snapshot recorded (injected as env variables).
    dependency_binding_references: list[DependencyBindingReference] = Field(default_factory=list)


class DeploymentList(WireModel):
    """``GET /deployments``."""

    items: list[DeploymentItem]


class ListDeploymentsQuery(ApiRequest):
    """Filters of ``GET /deployments`` and ``/deployments/count``."""

    project_id: str | None = Field(default=None, max_length=40)
    resource_id: str | None = Field(default=None, max_length=40)
    server_id: str | None = Field(default=None, max_length=40)
    status: DeploymentStatus | None = None
    statuses: list[DeploymentStatus] | None = None
    include_archived: bool = False
    limit: int = Field(default=100, gt=0, le=500)

    @field_validator("statuses", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _as_list(value)


class CountDeploymentsQuery(ApiRequest):
    """Filters of ``GET /deployments/count``."""

    project_id: str | None = Field(default=None, max_length=40)
    resource_id: str | None = Field(default=None, max_length=40)
    server_id: str | None = Field(default=None, max_length=40)
    status: DeploymentStatus | None = None
    statuses: list[DeploymentStatus] | None = None
    include_archived: bool = False

    @field_validator("statuses", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _as_list(value)


class LogLine(WireModel):
    """One deployment log line (secrets masked)."""

    sequence: int
    timestamp: datetime
    source: str
    phase: str
    level: str
    message: str
    masked: bool
    stream: str


class DeploymentLogs(WireModel):
    """``GET /deployments/{id}/logs``."""

    deployment_id: str
    logs: list[LogLine]


class DeploymentEventBody(WireModel):
    """One timeline event."""

    deployment_id: str
    sequence: int
    cursor: str
    emitted_at: datetime
    source: str
    event_type: str
    phase: str
    status: str
    retriable: bool
    summary: str


class EventEnvelope(WireModel):
    """``deployments.stream-events/v1`` envelope."""

    schema_version: Literal["deployments.stream-events/v1"] = "deployments.stream-events/v1"
    kind: Literal["event"] = "event"
    event: DeploymentEventBody


class DeploymentEvents(WireModel):
    """``GET /deployments/{id}/events``."""

    deployment_id: str
    envelopes: list[EventEnvelope]
    next_cursor: str | None


class EventsQuery(ApiRequest):
    """``cursor``: the last event already seen; ``historyLimit``: at most this many events."""

    cursor: str | None = Field(default=None, max_length=20)
    history_limit: int = Field(default=100, ge=0, le=200)


class StreamQuery(ApiRequest):
    """Query of ``GET /deployments/{id}/events/stream``."""

    cursor: str | None = Field(default=None, max_length=20)
    until_terminal: bool = False


# ---- show ------------------------------------------------------------------------------------


class StatusSection(WireModel):
    """``deployments.show/v1`` status."""

    current: DeploymentStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    rollback_of_deployment_id: str | None


class RelatedContext(WireModel):
    """Names of what the deployment belongs to."""

    project: ProjectRef
    environment: EnvironmentRef
    resource: ResourceRef
    server: ServerRef


class SnapshotSection(WireModel):
    """The immutable plan and (masked) environment snapshot."""

    runtime_plan: RuntimePlan | None
    environment_snapshot: EnvironmentSnapshot | None
    dependency_bindings: DependencyBindingsSection


class TimelineSection(WireModel):
    """Timestamps and counters."""

    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    log_count: int
    event_count: int


class LatestFailure(WireModel):
    """The most recent error of the deployment."""

    timestamp: datetime
    source: str
    phase: str
    level: str
    message: str
    code: str | None


class RecoverySummary(WireModel):
    """Short form of ``deployments.recovery-readiness/v1``."""

    source: Literal["deployments.recovery-readiness"] = "deployments.recovery-readiness"
    retryable: bool
    redeployable: bool
    rollback_ready: bool
    rollback_candidate_count: int
    blocked_reason_codes: list[str]


class DeploymentShowResponse(WireModel):
    """``deployments.show/v1``."""

    schema_version: Literal["deployments.show/v1"] = "deployments.show/v1"
    deployment: DeploymentItem
    status: StatusSection
    related_context: RelatedContext
    snapshot: SnapshotSection
    timeline: TimelineSection
    latest_failure: LatestFailure | None
    recovery_summary: RecoverySummary
    next_actions: list[str]
    generated_at: datetime


# ---- recovery --------------------------------------------------------------------------------


class CancelRequest(ApiRequest):
    """``POST /deployments/{id}/cancel``: ``confirm`` must repeat the deployment id."""

    confirm: str = Field(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=ID_PATTERN,
        description="must equal the path's deploymentId",
    )


class CancelResponse(WireModel):
    """Cancel acknowledgement; ``status`` is ``canceled`` or ``cancel-requested``."""

    id: str
    status: DeploymentStatus
    canceled_at: datetime | None


class EmptyRequest(ApiRequest):
    """A command without parameters (``{}``)."""


class RedeployRequest(ApiRequest):
    """``POST /resources/{id}/redeploy``: defaults to the server of the latest deployment."""

    server_id: str | None = Field(default=None, max_length=40)


class RollbackRequest(ApiRequest):
    """``POST /deployments/{id}/rollback``."""

    rollback_candidate_deployment_id: str = _ID


class RecoveryReason(WireModel):
    """Why a recovery operation is allowed or blocked."""

    code: str
    category: Literal["allowed", "blocked"]
    phase: str
    related_deployment_id: str | None
    retriable: bool
    recommendation: str | None
    related_entity_type: Literal["deployment"] | None = None
    related_entity_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _entity_is_the_deployment(cls, data: Any) -> Any:
        # Every reason Berth gives is about a deployment; Appaloft's generic entity pair says so.
        if isinstance(data, dict) and data.get("related_deployment_id"):
            data.setdefault("related_entity_type", "deployment")
            data.setdefault("related_entity_id", data["related_deployment_id"])
        return data


class RecoveryOperation(WireModel):
    """Retry or redeploy readiness."""

    allowed: bool
    command_active: bool
    reasons: list[RecoveryReason]
    target_operation: str


class RollbackCandidate(WireModel):
    """A succeeded deployment of the same resource whose artifact can run again."""

    deployment_id: str
    finished_at: datetime | None
    status: str
    artifact_summary: str | None
    environment_snapshot_id: str | None
    runtime_target_summary: str
    rollback_ready: bool
    source_summary: str | None = None
    reasons: list[RecoveryReason] = Field(default_factory=list)


class RollbackReadiness(WireModel):
    """Rollback readiness."""

    allowed: bool
    command_active: bool
    reasons: list[RecoveryReason]
    candidates: list[RollbackCandidate]
    recommended_candidate_id: str | None


class RecommendedAction(WireModel):
    """What a reader can do next: read the deployment, or run one of the recovery commands."""

    kind: Literal["query", "command"]
    target_operation: str
    label: str
    safe_by_default: bool
    blocked_reason_code: str | None
    command_active: bool


class RecoveryReadinessResponse(WireModel):
    """``deployments.recovery-readiness/v1``."""

    schema_version: Literal["deployments.recovery-readiness/v1"] = (
        "deployments.recovery-readiness/v1"
    )
    deployment_id: str
    resource_id: str
    generated_at: datetime
    state_version: int
    recoverable: bool
    retryable: bool
    redeployable: bool
    rollback_ready: bool
    rollback_candidate_count: int
    retry: RecoveryOperation
    redeploy: RecoveryOperation
    rollback: RollbackReadiness
    recommended_actions: list[RecommendedAction] = Field(default_factory=list)


# ---- runtime control and health --------------------------------------------------------------


class RuntimePhase(WireModel):
    """One phase of a runtime control attempt."""

    phase: str
    status: str
    error_code: str | None


class RuntimeControlResponse(WireModel):
    """Runtime control attempt (Appaloft shape)."""

    runtime_control_attempt_id: str
    operation: Literal["stop", "start", "restart"]
    status: Literal["succeeded", "failed"]
    started_at: datetime
    completed_at: datetime
    runtime_state: str
    blocked_reason: str | None
    error_code: str | None
    phases: list[RuntimePhase]
