"""Resource runtime routes: stop/start/restart through the agent, and ``resources.health/v1``."""

from datetime import UTC, datetime
from typing import Literal

from coordinator import audit
from coordinator.api.deployment_schemas import EmptyRequest, RuntimeControlResponse, RuntimePhase
from coordinator.api.health_schemas import (
    HealthCheck,
    HealthPolicySection,
    HealthQuery,
    HealthResponse,
    RuntimeSection,
    SourceError,
    access_sections,
    latest_deployment,
    latest_runtime_control,
)
from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.deployments import engine_of
from coordinator.ids import new_id
from coordinator.resource_config import health_policy, network_profile
from shared.errors import Conflict, NotFound, PlatformError
from shared.messages import RuntimeOperation

TAG = "resources"


async def _resource(actor: Principal, resource_id: str) -> models.Resource:
    row = await models.Resource.get_or_none(
        id=resource_id, project__organization_id=actor.organization_id
    )
    if row is None or not actor.can_see_resource(
        row.project_id,  # type: ignore[attr-defined]
        row.environment_id,  # type: ignore[attr-defined]
        row.id,
    ):
        raise NotFound(f"resource {resource_id!r} not found")
    return row


async def _latest(resource_id: str) -> models.Deployment | None:
    return (
        await models.Deployment.filter(resource_id=resource_id)
        .order_by("-created_at", "-id")
        .first()
    )


async def _control(call: Call, operation: RuntimeOperation) -> RuntimeControlResponse:
    resource = await _resource(call.actor, call.path["resourceId"])
    latest = await _latest(resource.id)
    if latest is None:
        raise Conflict(
            "the resource has no deployment to control", details={"resourceId": resource.id}
        )
    result = await engine_of(call).runtime_control(latest.server_id, resource.id, operation)
    attempt_id = new_id("rtc")
    error_code = result.error.code if result.error else None
    states = {c.state for c in result.containers}
    state = "running" if "running" in states else ("stopped" if result.containers else "not-found")
    await audit.record(
        actor=call.actor,
        event_type=f"resource.runtime-{operation}",
        aggregate_type="resource",
        aggregate_id=resource.id,
        # The health read's latestRuntimeControl is rebuilt from this payload.
        payload={
            "serverId": latest.server_id,
            "status": result.status,
            "attemptId": attempt_id,
            "startedAt": result.started_at.isoformat(),
            "runtimeState": state,
            "errorCode": error_code,
        },
        request_id=call.request_id,
    )
    return RuntimeControlResponse(
        runtime_control_attempt_id=attempt_id,
        operation=operation,
        status=result.status,
        started_at=result.started_at,
        completed_at=result.completed_at,
        runtime_state=state,
        blocked_reason=None,
        error_code=error_code,
        phases=[RuntimePhase(phase=operation, status=result.status, error_code=error_code)],
    )


def _declare(operation: RuntimeOperation) -> None:
    async def control(call: Call) -> RuntimeControlResponse:
        """Runtime control attempt; 409 without a deployment, ``unavailable`` when offline."""
        return await _control(call, operation)

    # The handler name is the OpenAPI operation id, so each operation gets its own.
    control.__name__ = control.__qualname__ = f"runtime_{operation}"
    _ = route(
        "POST",
        f"/resources/{{resourceId}}/runtime/{operation}",
        summary=f"{operation.capitalize()} the resource's containers on its server",
        tag=TAG,
        permission="deployments:write",
        body=EmptyRequest,
        response=RuntimeControlResponse,
        errors=AGENT_ERRORS,
    )(control)


_OPERATIONS: tuple[RuntimeOperation, ...] = ("stop", "start", "restart")
for _operation in _OPERATIONS:
    _declare(_operation)


@route(
    "GET",
    "/resources/{resourceId}/health",
    summary="Resource health from its latest deployment and a live agent probe",
    tag=TAG,
    permission="resources:read",
    query=HealthQuery,
    response=HealthResponse,
    errors=AGENT_ERRORS,
)
async def health(call: Call) -> HealthResponse:
    """``resources.health/v1``; partial with ``sourceErrors`` when the agent is offline."""
    resource = await _resource(call.actor, call.path["resourceId"])
    latest = await _latest(resource.id)
    policy = health_policy(resource)
    http = policy.get("http") or {}
    port = http.get("port") or network_profile(resource).get("internalPort")
    now = datetime.now(UTC)
    checks: list[HealthCheck] = []
    errors: list[SourceError] = []
    runtime = RuntimeSection(lifecycle="not-deployed", health="unknown", observed_at=None)
    observed: datetime | None = None
    overall = "not-deployed"
    if latest is not None:
        overall = "unknown"
        try:
            probe = await engine_of(call).probe(
                latest.server_id, resource.id, str(http.get("path") or "/"), port
            )
        except PlatformError as exc:
            errors.append(
                SourceError(
                    source="runtime-target",
                    code=exc.code,
                    message=exc.message,
                    retriable=True,
                    category="runtime-target",
                    phase="health-probe",
                    related_entity_id=latest.server_id,
                )
            )
        else:
            observed = probe.observed_at
            running = [c for c in probe.containers if c.state == "running"]
            failed = [c for c in probe.checks if c.status != "passed"]
            checks = [
                HealthCheck(
                    name=c.name,
                    target="runtime",
                    status=c.status,
                    observed_at=probe.observed_at,
                    duration_ms=c.duration_ms,
                    message=c.message,
                    metadata=c.metadata,
                )
                for c in probe.checks
            ]
            lifecycle: Literal["running", "stopped", "not-found"] = (
                "running" if running else ("stopped" if probe.containers else "not-found")
            )
            verdict: Literal["healthy", "degraded", "unhealthy"] = (
                "healthy" if running and not failed else ("degraded" if running else "unhealthy")
            )
            overall = verdict
            runtime = RuntimeSection(lifecycle=lifecycle, health=verdict, observed_at=observed)
    public_access, proxy = await access_sections(resource.id, latest, runtime)
    return HealthResponse(
        resource_id=resource.id,
        generated_at=now,
        observed_at=observed,
        overall=overall,  # type: ignore[arg-type]
        latest_deployment=await latest_deployment(latest) if latest is not None else None,
        runtime=runtime,
        latest_runtime_control=await latest_runtime_control(resource.id),
        health_policy=HealthPolicySection(
            status="configured" if resource.health_policy else "default",
            enabled=policy.get("enabled"),
            type=policy.get("type"),
            path=http.get("path"),
            port=port,
            expected_status_code=http.get("expectedStatusCode"),
            interval_seconds=policy.get("intervalSeconds"),
            timeout_seconds=policy.get("timeoutSeconds"),
            retries=policy.get("retries"),
            start_period_seconds=policy.get("startPeriodSeconds"),
        ),
        public_access=public_access,
        proxy=proxy,
        checks=checks,
        source_errors=errors,
    )
