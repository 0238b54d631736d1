"""Models of ``resources.health/v1`` in the reference's shape, and the sections built from rows."""

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import Field

from coordinator.api.deployment_schemas import RuntimePhase
from coordinator.api.deployment_views import edge_route
from coordinator.api.generated_route_status import (
    GeneratedRouteIntentStatus,
    generated_route_status,
)
from coordinator.api.schemas import ApiRequest
from coordinator.db import models
from coordinator.edge.access_failures import ResourceAccessFailure
from coordinator.workspace import runtime_control
from shared.messages import CheckResult
from shared.wire import WireModel


class HealthQuery(ApiRequest):
    """``mode=live`` probes the agent; ``cached`` (default) probes too when it is online."""

    mode: Literal["cached", "live"] = "cached"


class HealthCheck(WireModel):
    """One check result (``metadata``: what the agent said about it, e.g. the container)."""

    name: str
    target: str
    status: str
    observed_at: datetime | None
    duration_ms: float | None
    # The HTTP status the agent's probe saw; null for the runtime check, when no answer came,
    # or from an agent too old to report it.
    status_code: int | None = None
    message: str | None
    reason_code: str | None = None
    phase: str | None = None
    retriable: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)


# The phase each of the agent's checks belongs to.
_CHECK_PHASES: Final[dict[str, str]] = {"runtime": "runtime-state", "health": "health-probe"}
# Reasons another probe cannot change: the container must be started or the health policy's
# port published (a new deployment) first.
_FINAL_REASONS: Final = frozenset({"runtime-not-running", "health-port-not-published"})


def health_check(check: CheckResult, observed_at: datetime) -> HealthCheck:
    """The reference's check shape of one agent check; only a failure may be retriable."""
    return HealthCheck(
        name=check.name,
        target="runtime",
        status=check.status,
        observed_at=observed_at,
        duration_ms=check.duration_ms,
        status_code=check.status_code,
        message=check.message,
        reason_code=check.reason_code,
        phase=_CHECK_PHASES.get(check.name),
        # A skipped check (nothing to probe) needs a change first, like the final reasons.
        retriable=check.status == "failed" and check.reason_code not in _FINAL_REASONS,
        metadata=check.metadata,
    )


class SourceError(WireModel):
    """A part of the answer that could not be produced, and which entity it is about."""

    source: str
    code: str
    message: str
    retriable: bool
    category: str | None = None
    phase: str | None = None
    related_entity_id: str | None = None
    related_state: str | None = None


class HealthLastError(WireModel):
    """Why the latest deployment failed."""

    timestamp: datetime
    phase: str
    message: str
    code: str | None


class HealthLatestDeployment(WireModel):
    """The resource's newest deployment."""

    id: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    server_id: str
    destination_id: str | None
    last_error: HealthLastError | None


class RuntimeSection(WireModel):
    """What the agent saw of the resource's containers."""

    lifecycle: Literal["not-deployed", "running", "stopped", "not-found"]
    health: Literal["healthy", "degraded", "unhealthy", "unknown"]
    observed_at: datetime | None
    runtime_kind: Literal["docker-container"] = "docker-container"
    reason_code: str | None = None
    message: str | None = None


class HealthPolicySection(WireModel):
    """The health policy the probe used (``default`` when the resource configured none)."""

    status: Literal["configured", "default"]
    enabled: bool | None
    type: str | None
    path: str | None
    port: int | None
    expected_status_code: int | None
    interval_seconds: float | None
    timeout_seconds: float | None
    retries: int | None
    start_period_seconds: float | None
    # Why the policy is not in force; Berth always applies one (configured or default).
    reason_code: str | None = None


class LatestRuntimeControl(WireModel):
    """The newest stop/start/restart of the resource, from its audit event."""

    runtime_control_attempt_id: str
    operation: Literal["stop", "start", "restart"]
    status: Literal["succeeded", "failed"]
    started_at: datetime | None
    completed_at: datetime
    runtime_state: str | None
    blocked_reason: str | None
    error_code: str | None
    phases: list[RuntimePhase]


AccessStatus = Literal["ready", "not-ready", "not-configured"]


class PublicAccess(WireModel):
    """Where the resource is reached: the generated hostname its serving deployment routed."""

    status: AccessStatus
    url: str | None
    kind: Literal["generated-default"] | None
    reason_code: str | None
    phase: str | None
    # The generated route's status; null when the resource is not exposed through the edge.
    route_intent_status: GeneratedRouteIntentStatus | None = None
    # The newest request the edge could not serve for this resource (kept 24 h), else null.
    latest_access_failure: ResourceAccessFailure | None = None


class ProxySection(WireModel):
    """The edge proxy (Caddy on the server) and which deployment's route it serves."""

    status: AccessStatus
    provider_key: Literal["caddy"] = "caddy"
    last_route_realization_deployment_id: str | None
    reason_code: str | None


class HealthResponse(WireModel):
    """``resources.health/v1`` (trimmed to what an agent can observe)."""

    schema_version: Literal["resources.health/v1"] = "resources.health/v1"
    resource_id: str
    generated_at: datetime
    observed_at: datetime | None
    overall: Literal["healthy", "degraded", "unhealthy", "not-deployed", "unknown"]
    latest_deployment: HealthLatestDeployment | None
    runtime: RuntimeSection
    latest_runtime_control: LatestRuntimeControl | None = None
    health_policy: HealthPolicySection
    public_access: PublicAccess
    proxy: ProxySection
    checks: list[HealthCheck]
    source_errors: list[SourceError]


async def latest_deployment(row: models.Deployment) -> HealthLatestDeployment:
    """The latest deployment section; a failure's phase comes from its last error line."""
    last_error: HealthLastError | None = None
    if row.error_code or row.error_message:
        line = await runtime_control.last_error_line(row.id)
        last_error = HealthLastError(
            timestamp=line.timestamp if line else (row.finished_at or row.created_at),
            phase=line.phase if line else "reconcile",
            message=row.error_message or (line.message if line else "deployment failed"),
            code=row.error_code,
        )
    return HealthLatestDeployment(
        id=row.id,
        status=row.status,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        server_id=row.server_id,
        destination_id=None,
        last_error=last_error,
    )


async def latest_runtime_control(resource_id: str) -> LatestRuntimeControl | None:
    """The newest runtime control attempt, as its audit event recorded it."""
    return (await latest_runtime_controls([resource_id])).get(resource_id)


async def latest_runtime_controls(resource_ids: list[str]) -> dict[str, LatestRuntimeControl]:
    """The newest runtime control attempt of each resource (one query for a page of them)."""
    attempts = await runtime_control.latest_attempts(resource_ids)
    return {resource_id: _control(event) for resource_id, event in attempts.items()}


def _control(event: models.AuditEvent) -> LatestRuntimeControl:
    payload: dict[str, Any] = event.payload or {}
    operation = event.event_type.removeprefix("resource.runtime-")
    status: Literal["succeeded", "failed"] = (
        "succeeded" if payload.get("status") == "succeeded" else "failed"
    )
    error_code = payload.get("errorCode")
    started = payload.get("startedAt")
    return LatestRuntimeControl(
        runtime_control_attempt_id=str(payload.get("attemptId") or event.id),
        operation=operation,  # type: ignore[arg-type]
        status=status,
        started_at=datetime.fromisoformat(started) if isinstance(started, str) else None,
        completed_at=event.occurred_at,
        runtime_state=payload.get("runtimeState"),
        blocked_reason=None,
        error_code=error_code,
        phases=[RuntimePhase(phase=operation, status=status, error_code=error_code)],
    )


async def access_sections(
    resource_id: str,
    latest: models.Deployment | None,
    runtime: RuntimeSection,
    request_id: str | None = None,
) -> tuple[PublicAccess, ProxySection]:
    """Public access and proxy, from the newest succeeded deployment (the one the edge serves).

    The agent switches the edge route only when a deployment succeeds, so a newer failed or
    running deployment leaves the older route in place.
    """
    serving = await runtime_control.serving_deployment(resource_id)
    route = edge_route(serving)
    if route is None or serving is None:
        planned = edge_route(latest)
        status: AccessStatus = "not-ready" if planned else "not-configured"
        reason = "no-succeeded-deployment" if planned else "no-edge-route"
        intent = (
            generated_route_status(
                resource_id,
                planned,
                latest,
                served=False,
                runtime_health=runtime.health,
                observed_at=runtime.observed_at,
                request_id=request_id,
            )
            if planned is not None and latest is not None
            else None
        )
        return (
            PublicAccess(
                status=status,
                url=None,
                kind=None,
                reason_code=reason,
                phase="routing",
                route_intent_status=intent,
            ),
            ProxySection(
                status=status, last_route_realization_deployment_id=None, reason_code=reason
            ),
        )
    healthy = runtime.health == "healthy"
    return (
        PublicAccess(
            status="ready" if healthy else "not-ready",
            # The edge serves plain HTTP (Caddy's automatic HTTPS is off; TLS is issue 15).
            url=f"http://{route.domains[0]}",
            kind="generated-default",
            reason_code=None if healthy else f"runtime-{runtime.health}",
            phase=None if healthy else "runtime-health",
            route_intent_status=generated_route_status(
                resource_id,
                route,
                serving,
                served=True,
                runtime_health=runtime.health,
                observed_at=runtime.observed_at,
                request_id=request_id,
            ),
        ),
        ProxySection(
            status="ready", last_route_realization_deployment_id=serving.id, reason_code=None
        ),
    )
