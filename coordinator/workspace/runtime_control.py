"""Resource runtime control and health reads: the deployments they act on, the attempts they
record (as audit events, from which ``latestRuntimeControl`` is rebuilt) and the last error."""

from typing import Any, Final

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db import models
from shared.errors import Conflict
from shared.messages import RuntimeOperation

RUNTIME_CONTROL_EVENTS: Final = (
    "resource.runtime-stop",
    "resource.runtime-start",
    "resource.runtime-restart",
)


async def latest_deployment(resource_id: str) -> models.Deployment | None:
    """The resource's newest deployment, whatever its status."""
    return (
        await models.Deployment.filter(resource_id=resource_id)
        .order_by("-created_at", "-id")
        .first()
    )


async def controlled_deployment(resource_id: str) -> models.Deployment:
    """The deployment a runtime control acts on (the newest); 409 when there is none."""
    latest = await latest_deployment(resource_id)
    if latest is None:
        raise Conflict(
            "the resource has no deployment to control", details={"resourceId": resource_id}
        )
    return latest


async def serving_deployment(resource_id: str) -> models.Deployment | None:
    """The newest succeeded deployment: the one the edge serves.

    The agent switches the edge route only when a deployment succeeds, so a newer failed or
    running deployment leaves the older route in place.
    """
    return (
        await models.Deployment.filter(resource_id=resource_id, status="succeeded")
        .order_by("-finished_at", "-id")
        .first()
    )


async def last_error_line(deployment_id: str) -> models.DeploymentLog | None:
    """The deployment's last error log line (its phase names where a failure happened)."""
    return (
        await models.DeploymentLog.filter(deployment_id=deployment_id, level="error")
        .order_by("-sequence")
        .first()
    )


async def latest_attempts(resource_ids: list[str]) -> dict[str, models.AuditEvent]:
    """The newest runtime control attempt of each resource (one query for a page of them)."""
    if not resource_ids:
        return {}
    events = await models.AuditEvent.filter(
        aggregate_type="resource",
        aggregate_id__in=resource_ids,
        event_type__in=list(RUNTIME_CONTROL_EVENTS),
    ).order_by("-id")
    found: dict[str, models.AuditEvent] = {}
    for event in events:
        if event.aggregate_id and event.aggregate_id not in found:
            found[event.aggregate_id] = event
    return found


async def record_attempt(
    actor: Principal,
    operation: RuntimeOperation,
    resource_id: str,
    payload: dict[str, Any],
    request_id: str | None,
) -> None:
    """Audit one runtime control attempt; the health read's ``latestRuntimeControl`` is
    rebuilt from this payload."""
    await audit.record(
        actor=actor,
        event_type=f"resource.runtime-{operation}",
        aggregate_type="resource",
        aggregate_id=resource_id,
        payload=payload,
        request_id=request_id,
    )
