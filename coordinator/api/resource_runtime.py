"""Resource runtime routes: stop/start/restart through the agent, and ``resources.health/v1``."""

from datetime import UTC, datetime
from typing import Any

from coordinator import audit
from coordinator.api.deployment_plans import engine_of
from coordinator.api.deployment_schemas import (
    EmptyRequest,
    HealthCheck,
    HealthQuery,
    HealthResponse,
    RuntimeControlResponse,
    RuntimePhase,
    SourceError,
)
from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.auth import Principal
from coordinator.db import models
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
    await audit.record(
        actor=call.actor,
        event_type=f"resource.runtime-{operation}",
        aggregate_type="resource",
        aggregate_id=resource.id,
        payload={"serverId": latest.server_id, "status": result.status, "attemptId": attempt_id},
        request_id=call.request_id,
    )
    error_code = result.error.code if result.error else None
    states = {c.state for c in result.containers}
    state = "running" if "running" in states else ("stopped" if result.containers else "not-found")
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
    runtime: dict[str, Any] = {
        "lifecycle": "not-deployed",
        "health": "unknown",
        "observedAt": None,
        "runtimeKind": "docker-container",
        "reasonCode": None,
        "message": None,
    }
    observed: datetime | None = None
    latest_view: dict[str, Any] | None = None
    overall = "not-deployed"
    if latest is not None:
        latest_view = {
            "id": latest.id,
            "status": latest.status,
            "createdAt": latest.created_at.isoformat(),
            "startedAt": latest.started_at.isoformat() if latest.started_at else None,
            "finishedAt": latest.finished_at.isoformat() if latest.finished_at else None,
            "serverId": latest.server_id,
            "lastError": {"message": latest.error_message, "code": latest.error_code}
            if latest.error_code or latest.error_message
            else None,
        }
        overall = "unknown"
        try:
            probe = await engine_of(call).probe(
                latest.server_id, resource.id, str(http.get("path") or "/"), port
            )
        except PlatformError as exc:
            errors.append(
                SourceError(
                    source="runtime-target", code=exc.code, message=exc.message, retriable=True
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
                )
                for c in probe.checks
            ]
            lifecycle = "running" if running else ("stopped" if probe.containers else "not-found")
            verdict = (
                "healthy" if running and not failed else ("degraded" if running else "unhealthy")
            )
            overall = verdict
            runtime = {
                **runtime,
                "lifecycle": lifecycle,
                "health": verdict,
                "observedAt": observed.isoformat(),
            }
    return HealthResponse(
        resource_id=resource.id,
        generated_at=now,
        observed_at=observed,
        overall=overall,  # type: ignore[arg-type]
        latest_deployment=latest_view,
        runtime=runtime,
        health_policy={
            "status": "configured" if resource.health_policy else "default",
            "enabled": policy.get("enabled"),
            "type": policy.get("type"),
            "path": http.get("path"),
            "port": port,
            "expectedStatusCode": http.get("expectedStatusCode"),
            "intervalSeconds": policy.get("intervalSeconds"),
            "timeoutSeconds": policy.get("timeoutSeconds"),
            "retries": policy.get("retries"),
            "startPeriodSeconds": policy.get("startPeriodSeconds"),
        },
        checks=checks,
        source_errors=errors,
    )
