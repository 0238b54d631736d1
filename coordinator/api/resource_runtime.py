"""Resource runtime routes: stop/start/restart through the agent, and ``resources.health/v1``."""

from datetime import UTC, datetime
from typing import Literal

from coordinator.api.deployment_schemas import EmptyRequest, RuntimeControlResponse, RuntimePhase
from coordinator.api.health_schemas import (
    HealthCheck,
    HealthPolicySection,
    HealthQuery,
    HealthResponse,
    RuntimeSection,
    SourceError,
    access_sections,
    health_check,
    latest_deployment,
    latest_runtime_control,
)
from coordinator.api.routing import AGENT_ERRORS, Call, route
from coordinator.appkeys import ENGINE_KEY
from coordinator.edge import access_failures
from coordinator.ids import new_id
from coordinator.lookup import get_resource
from coordinator.resource_config import health_policy, network_profile
from coordinator.workspace import runtime_control
from shared.errors import PlatformError
from shared.messages import RuntimeOperation

TAG = "resources"


async def _control(call: Call, operation: RuntimeOperation) -> RuntimeControlResponse:
    resource = await get_resource(call.actor, call.path["resourceId"])
    latest = await runtime_control.controlled_deployment(resource.id)
    engine = call.request.app[ENGINE_KEY]
    result = await engine.runtime_control(latest.server_id, resource.id, operation)
    attempt_id = new_id("rtc")
    error_code = result.error.code if result.error else None
    states = {c.state for c in result.containers}
    state = "running" if "running" in states else ("stopped" if result.containers else "not-found")
    await runtime_control.record_attempt(
        call.actor,
        operation,
        resource.id,
        {
            "serverId": latest.server_id,
            "status": result.status,
            "attemptId": attempt_id,
            "startedAt": result.started_at.isoformat(),
            "runtimeState": state,
            "errorCode": error_code,
        },
        call.request_id,
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
    resource = await get_resource(call.actor, call.path["resourceId"])
    latest = await runtime_control.latest_deployment(resource.id)
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
            probe = await call.request.app[ENGINE_KEY].probe(
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
            checks = [health_check(c, probe.observed_at) for c in probe.checks]
            lifecycle: Literal["running", "stopped", "not-found"] = (
                "running" if running else ("stopped" if probe.containers else "not-found")
            )
            verdict: Literal["healthy", "degraded", "unhealthy"] = (
                "healthy" if running and not failed else ("degraded" if running else "unhealthy")
            )
            overall = verdict
            runtime = RuntimeSection(lifecycle=lifecycle, health=verdict, observed_at=observed)
    public_access, proxy = await access_sections(resource.id, latest, runtime, call.request_id)
    failures = await access_failures.latest_by_resource([resource.id])
    public_access = public_access.model_copy(
        update={"latest_access_failure": failures.get(resource.id)}
    )
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
