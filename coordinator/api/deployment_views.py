"""Typed read views of a deployment's stored runtime plan, environment snapshot and context.

The planner stores ``runtimePlan`` and ``environmentSnapshot`` as JSON in the reference's shape;
these models document that shape in ``/openapi.json`` (instead of a free-form object) and every
read validates the stored JSON through them, so the answer and its schema cannot drift apart.
Every field is optional: a row written by an older release may lack one.
"""

from typing import Any, Literal

from pydantic import Field

from coordinator.api.dependency_schemas import DependencyKindName, DependencyReadiness
from coordinator.db import models
from coordinator.deployments.store import public_snapshot
from shared.wire import WireModel


class RuntimePlanSource(WireModel):
    """What was deployed: the resource's source as the plan saw it."""

    kind: str | None = None
    locator: str | None = None
    display_name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class RuntimePlanArtifact(WireModel):
    """The image the agent runs, and whether it pulls it or builds it from the archive."""

    kind: str | None = None
    intent: str | None = None
    image: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class RuntimePlanHttpCheck(WireModel):
    """The HTTP probe of the health check."""

    method: str | None = None
    scheme: str | None = None
    host: str | None = None
    port: int | None = None
    path: str | None = None
    expected_status_code: int | None = None
    expected_response_text: str | None = None


class RuntimePlanHealthCheck(WireModel):
    """The resource's health policy at plan time."""

    enabled: bool | None = None
    type: str | None = None
    interval_seconds: float | None = None
    timeout_seconds: float | None = None
    retries: int | None = None
    start_period_seconds: float | None = None
    http: RuntimePlanHttpCheck | None = None


class RuntimePlanAccessRoute(WireModel):
    """A route the edge proxy serves for the deployment."""

    proxy_kind: str | None = None
    domains: list[str] = Field(default_factory=list)
    path_prefix: str | None = None
    tls_mode: str | None = None
    target_port: int | None = None


class RuntimePlanVerificationStep(WireModel):
    """A check the agent runs before switching traffic."""

    kind: str | None = None
    label: str | None = None


class RuntimePlanExecution(WireModel):
    """How the container runs: command, port, health check, routes (Berth's extras in metadata)."""

    kind: str | None = None
    start_command: str | None = None
    health_check_path: str | None = None
    health_check: RuntimePlanHealthCheck | None = None
    port: int | None = None
    image: str | None = None
    dockerfile_path: str | None = None
    access_routes: list[RuntimePlanAccessRoute] = Field(default_factory=list)
    verification_steps: list[RuntimePlanVerificationStep] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class RuntimePlanTarget(WireModel):
    """Where it runs: the server."""

    kind: str | None = None
    provider_key: str | None = None
    server_ids: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class RuntimePlan(WireModel):
    """The immutable plan a deployment ran (the reference's ``runtimePlan``)."""

    id: str | None = None
    source: RuntimePlanSource | None = None
    build_strategy: str | None = None
    packaging_mode: str | None = None
    runtime_artifact: RuntimePlanArtifact | None = None
    execution: RuntimePlanExecution | None = None
    target: RuntimePlanTarget | None = None
    detect_summary: str | None = None
    steps: list[str] = Field(default_factory=list)
    generated_at: str | None = None


class SnapshotVariable(WireModel):
    """One variable of the snapshot (a secret's value reads ``****``)."""

    key: str
    value: str | None = None
    scope: str | None = None
    exposure: str | None = None
    is_secret: bool = False
    kind: str | None = None


class EnvironmentSnapshot(WireModel):
    """The variables the deployment ran with, frozen at plan time."""

    id: str | None = None
    environment_id: str | None = None
    created_at: str | None = None
    precedence: list[str] = Field(default_factory=list)
    variables: list[SnapshotVariable] = Field(default_factory=list)


class ProjectRef(WireModel):
    """The deployment's project (``deleted`` with only its id once it is gone)."""

    id: str
    name: str | None = None
    slug: str | None = None
    deleted: bool = False


class EnvironmentRef(WireModel):
    """The deployment's environment (``deleted`` with only its id once it is gone)."""

    id: str
    name: str | None = None
    kind: str | None = None
    deleted: bool = False


class ResourceRef(WireModel):
    """The deployed resource (``deleted`` with only its id once it is gone)."""

    id: str
    name: str | None = None
    slug: str | None = None
    kind: str | None = None
    deleted: bool = False


class ServerRef(WireModel):
    """The server it ran on (``deleted`` with only its id once it is gone)."""

    id: str
    name: str | None = None
    host: str | None = None
    port: int | None = None
    provider_key: str | None = None
    deleted: bool = False


def plan_view(row: models.Deployment) -> RuntimePlan | None:
    """The stored runtime plan, through its model."""
    return RuntimePlan.model_validate(row.runtime_plan) if row.runtime_plan else None


def snapshot_view(row: models.Deployment) -> EnvironmentSnapshot | None:
    """The stored environment snapshot as every read shows it (secrets masked)."""
    shown = public_snapshot(row.environment_snapshot)
    return EnvironmentSnapshot.model_validate(shown) if shown else None


class DependencyBindingReference(WireModel):
    """A dependency binding a deployment was (or will be) given as an environment variable."""

    binding_id: str
    dependency_resource_id: str
    kind: DependencyKindName
    target_name: str
    scope: Literal["environment"] = "environment"
    injection_mode: Literal["env"] = "env"
    snapshot_readiness: DependencyReadiness


class DependencyBindingsSection(WireModel):
    """The bindings and whether they can be injected (``blocked``: the plan says why)."""

    status: Literal["ready", "blocked"]
    references: list[DependencyBindingReference]
    runtime_injection: DependencyReadiness


def binding_references(
    stored: list[dict[str, str]], reason: str
) -> list[DependencyBindingReference]:
    """References from ``BoundEntry.reference`` dicts (a snapshot's or a plan's)."""
    return [
        DependencyBindingReference(
            binding_id=ref["bindingId"],
            dependency_resource_id=ref["dependencyResourceId"],
            kind=ref["kind"],  # type: ignore[arg-type]
            target_name=ref["targetName"],
            snapshot_readiness=DependencyReadiness(status="ready", reason=reason),
        )
        for ref in stored
    ]


def deployment_bindings(row: models.Deployment) -> list[DependencyBindingReference]:
    """What the deployment's snapshot recorded (empty for deployments made before it did)."""
    stored: list[dict[str, str]] = (row.environment_snapshot or {}).get(  # type: ignore[assignment]
        "dependencyBindings"
    ) or []
    return binding_references(stored, "captured in this deployment's environment snapshot")


def bindings_section(
    references: list[DependencyBindingReference], blocked: str | None = None
) -> DependencyBindingsSection:
    """The section of a deployment or a plan; ``blocked``: why the bindings cannot be injected."""
    names = ", ".join(r.target_name for r in references)
    reason = blocked or (f"injected as env {names}" if references else "no dependency bindings")
    status: Literal["ready", "blocked"] = "blocked" if blocked else "ready"
    return DependencyBindingsSection(
        status=status,
        references=references,
        runtime_injection=DependencyReadiness(status=status, reason=reason),
    )


def edge_route(row: models.Deployment | None) -> RuntimePlanAccessRoute | None:
    """The first route the deployment's plan serves through the edge proxy, if any."""
    plan = plan_view(row) if row is not None else None
    routes = plan.execution.access_routes if plan and plan.execution else []
    return next((r for r in routes if r.proxy_kind == "edge" and r.domains), None)
