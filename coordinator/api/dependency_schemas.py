"""Request and response models of the dependency-resource and binding routes (Appaloft shapes)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from coordinator.api.schemas import ApiRequest
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.wire import WireModel

# The reference's kinds; clickhouse, object-storage and opensearch are refused with a 400.
DependencyKindName = Literal[
    "postgres", "redis", "mysql", "clickhouse", "object-storage", "opensearch"
]
SourceMode = Literal["appaloft-managed", "imported-external"]
LifecycleStatus = Literal["provisioning", "ready", "failed", "deleted"]
RealizationStatus = Literal["pending", "realized", "failed", "not-applicable"]

_Id = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
_OptionalId = Field(default=None, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
_Name = Field(min_length=1, max_length=100)


class ProvisionDependencyRequest(ApiRequest):
    """``POST /dependency-resources/provision`` (``serverId``: where Berth runs it)."""

    kind: DependencyKindName
    project_id: str = _Id
    environment_id: str = _Id
    name: str = _Name
    server_id: str | None = _OptionalId
    description: str = Field(default="", max_length=500)
    cpus: float | None = Field(default=None, gt=0, le=512)
    memory_bytes: int | None = Field(default=None, ge=64 * 1024 * 1024)
    publish_port: bool = Field(default=False, description="also publish the port on 127.0.0.1")


class ImportDependencyRequest(ApiRequest):
    """``POST /dependency-resources/import``: an external database by ``connectionUrl``."""

    kind: DependencyKindName
    project_id: str = _Id
    environment_id: str = _Id
    name: str = _Name
    connection_url: str = Field(min_length=1, max_length=2000)
    description: str = Field(default="", max_length=500)


class DependencyPlanCreate(ApiRequest):
    """The ``create`` part of a provisioning plan request."""

    kind: DependencyKindName
    project_id: str = _Id
    environment_id: str = _Id
    name: str = _Name
    server_id: str | None = _OptionalId


class DependencyPlanRequest(ApiRequest):
    """``POST /dependency-resources/provisioning/plan`` (only ``mode: create`` for now)."""

    mode: Literal["create"] = "create"
    create: DependencyPlanCreate


class AcceptDependencyPlanRequest(ApiRequest):
    """``POST .../provisioning/{planId}/accept``: the caller must acknowledge the mutation."""

    acknowledge_mutation: bool


class RenameDependencyRequest(ApiRequest):
    """``POST /dependency-resources/{id}/rename``."""

    name: str = _Name


class ListDependencyResourcesQuery(ApiRequest):
    """Filters of ``GET /dependency-resources``."""

    project_id: str | None = _OptionalId
    environment_id: str | None = _OptionalId
    kind: DependencyKindName | None = None
    limit: int = Field(default=100, gt=0, le=500)


class CountDependencyResourcesQuery(ApiRequest):
    """Filters of ``GET /dependency-resources/count``."""

    project_id: str | None = _OptionalId
    environment_id: str | None = _OptionalId
    kind: DependencyKindName | None = None


class DependencyCapability(WireModel):
    """A desired capability (e.g. a postgres extension); Berth requests none yet."""

    type: Literal["postgres-extension"]
    name: str
    required: bool
    description: str


class DependencyCapabilityReadback(WireModel):
    """A capability as checked on the running database."""

    type: Literal["postgres-extension"]
    name: str
    required: bool
    status: Literal["satisfied", "missing"]
    evidence: list[str]
    version: str | None
    checked_at: datetime | None


class DependencyConnection(WireModel):
    """Safe connection parts: the URL is masked, ``secretRef`` names the sealed secret."""

    host: str
    port: int
    database_name: str | None
    masked_connection: str
    secret_ref: str


class DependencyProviderRealization(WireModel):
    """How far running it went on its server."""

    status: RealizationStatus
    attempt_id: str | None
    attempted_at: datetime | None
    provider_resource_handle: str | None
    realized_at: datetime | None
    failed_at: datetime | None
    failure_code: str | None
    failure_message: str | None


class DependencyReadiness(WireModel):
    """Whether it can be bound now, and why not."""

    status: Literal["ready", "blocked", "deferred"]
    reason: str | None


class DependencyBackupRelationship(WireModel):
    """Whether backups of the resource are kept (docs/backups.md)."""

    retention_required: bool
    reason: str | None


class DependencyDeleteBlocker(WireModel):
    """Something that blocks deleting it."""

    kind: Literal["resource-binding"]
    related_entity_id: str
    related_entity_type: str
    count: int


class DependencyDeleteSafety(WireModel):
    """What blocks a delete."""

    blockers: list[DependencyDeleteBlocker]


class DependencyResourceItem(WireModel):
    """One dependency resource, credentials masked."""

    id: str
    project_id: str
    environment_id: str
    server_id: str | None
    name: str
    slug: str
    kind: DependencyKindName
    source_mode: SourceMode
    provider_key: str
    provider_managed: bool
    description: str
    lifecycle_status: LifecycleStatus
    image: str | None
    connection: DependencyConnection
    provider_realization: DependencyProviderRealization
    desired_capabilities: list[DependencyCapability]
    capability_readbacks: list[DependencyCapabilityReadback]
    binding_readiness: DependencyReadiness
    backup_relationship: DependencyBackupRelationship
    delete_safety: DependencyDeleteSafety
    created_at: datetime
    deleted_at: datetime | None


class DependencyResourceList(WireModel):
    """``GET /dependency-resources``."""

    schema_version: Literal["dependency-resources.list/v1"] = "dependency-resources.list/v1"
    items: list[DependencyResourceItem]
    generated_at: datetime


class DependencyResourceShow(WireModel):
    """``GET /dependency-resources/{id}``."""

    schema_version: Literal["dependency-resources.show/v1"] = "dependency-resources.show/v1"
    dependency_resource: DependencyResourceItem
    generated_at: datetime


class DependencyProvisioningPlanItem(WireModel):
    """A provisioning plan and its outcome."""

    id: str
    mode: Literal["create"]
    status: Literal["planned", "accepted", "completed", "failed"]
    kind: DependencyKindName
    project_id: str
    environment_id: str
    name: str
    provider_key: str
    server_id: str | None
    endpoint: str | None
    capabilities: list[DependencyCapability]
    requires_acceptance: bool
    requested_at: datetime
    accepted_at: datetime | None
    completed_at: datetime | None
    dependency_resource_id: str | None
    failure_code: str | None
    failure_message: str | None
    summary: list[str]


class DependencyProvisioningPlanResponse(WireModel):
    """``dependency-resource-provisioning.plan/v1``."""

    schema_version: Literal["dependency-resource-provisioning.plan/v1"] = (
        "dependency-resource-provisioning.plan/v1"
    )
    plan: DependencyProvisioningPlanItem
    generated_at: datetime


class CreateDependencyBindingRequest(ApiRequest):
    """``POST /resources/{resourceId}/dependency-bindings``."""

    dependency_resource_id: str = _Id
    target_name: str = Field(min_length=1, max_length=100)


class DependencyBindingTarget(WireModel):
    """Where the connection goes: an environment variable of the resource's deployments."""

    target_name: str
    scope: Literal["environment"]
    injection_mode: Literal["env"]
    secret_ref: str


class DependencySecretRotation(WireModel):
    """The secret version the binding uses."""

    secret_ref: str
    secret_version: str
    rotated_at: datetime | None
    previous_secret_version: str | None


class DependencyBindingItem(WireModel):
    """One dependency binding, without the raw secret."""

    id: str
    project_id: str
    environment_id: str
    resource_id: str
    dependency_resource_id: str
    dependency_resource_name: str
    dependency_resource_slug: str
    kind: DependencyKindName
    source_mode: SourceMode
    provider_key: str
    provider_managed: bool
    lifecycle_status: LifecycleStatus
    target: DependencyBindingTarget
    secret_rotation: DependencySecretRotation
    connection: DependencyConnection
    binding_readiness: DependencyReadiness
    snapshot_readiness: DependencyReadiness
    status: Literal["active", "removed"]
    created_at: datetime
    removed_at: datetime | None


class DependencyBindingList(WireModel):
    """``resources.dependency-bindings.list/v1``."""

    schema_version: Literal["resources.dependency-bindings.list/v1"] = (
        "resources.dependency-bindings.list/v1"
    )
    items: list[DependencyBindingItem]
    generated_at: datetime


class DependencyBindingShow(WireModel):
    """``resources.dependency-bindings.show/v1``."""

    schema_version: Literal["resources.dependency-bindings.show/v1"] = (
        "resources.dependency-bindings.show/v1"
    )
    binding: DependencyBindingItem
    generated_at: datetime


class SecretRotationRequest(ApiRequest):
    """``POST .../dependency-bindings/{bindingId}/secret-rotations``."""

    confirm_historical_snapshots_remain_unchanged: bool
    # Berth extension: running containers keep the old URL (and lose the database at their next
    # connection), so the caller may ask for every bound resource to be deployed again at once.
    redeploy_bound_resources: bool = False


class BoundRedeployment(WireModel):
    """One bound resource's redeployment after a rotation: started, or why not."""

    resource_id: str
    deployment_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class SecretRotationResponse(WireModel):
    """The rotation's outcome: the new secret version."""

    id: str
    rotated_at: datetime
    secret_version: str
    # Present when ``redeployBoundResources`` was asked for.
    redeployments: list[BoundRedeployment] | None = None
