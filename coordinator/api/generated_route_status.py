"""``route-intent-status/v1`` of a resource's generated access route, as its health shows it."""

from datetime import datetime
from typing import Literal

from coordinator.api.deployment_views import RuntimePlanAccessRoute, plan_view
from coordinator.api.domain_schemas import CopySafeSummary, RouteContext, RouteIntent
from coordinator.db import models
from shared.wire import WireModel

RuntimeHealth = Literal["healthy", "degraded", "unhealthy", "unknown"]


class GeneratedRouteProxy(WireModel):
    """The edge proxy must carry a generated route; ``applied`` once a deployment routed it."""

    intent: Literal["required"] = "required"
    applied: Literal["applied", "not-configured"]
    provider_key: Literal["caddy"] = "caddy"


class RouteObservation(WireModel):
    """The agent probe this answer's runtime health comes from."""

    source: Literal["resource-health-probe"] = "resource-health-probe"
    observed_at: datetime
    request_id: str | None
    deployment_id: str | None


class GeneratedRouteIntentStatus(WireModel):
    """The generated route: plain HTTP on a hostname Berth owns, so no verification or TLS."""

    schema_version: Literal["route-intent-status/v1"] = "route-intent-status/v1"
    route_id: str
    diagnostic_id: str
    source: Literal["generated-default-access"] = "generated-default-access"
    intent: RouteIntent
    context: RouteContext
    proxy: GeneratedRouteProxy
    domain_verification: Literal["not-applicable"] = "not-applicable"
    tls: Literal["not-applicable"] = "not-applicable"
    runtime_health: RuntimeHealth
    latest_observation: RouteObservation | None
    blocking_reason: Literal["proxy_route_not_applied", "runtime_not_ready"] | None
    recommended_action: Literal["none", "deploy", "check-health"]
    copy_safe_summary: CopySafeSummary


def generated_route_status(
    resource_id: str,
    route: RuntimePlanAccessRoute,
    row: models.Deployment,
    *,
    served: bool,
    runtime_health: RuntimeHealth,
    observed_at: datetime | None,
    request_id: str | None,
) -> GeneratedRouteIntentStatus:
    """The status of ``route`` as deployment ``row`` planned it; ``served``: the edge carries it.

    A route is blocked until a deployment succeeded (the agent switches the edge only then),
    then until the runtime behind it is healthy.
    """
    plan = plan_view(row)
    reason: Literal["proxy_route_not_applied", "runtime_not_ready"] | None = None
    action: Literal["none", "deploy", "check-health"] = "none"
    message = f"http://{route.domains[0]} is served"
    if not served:
        reason, action = "proxy_route_not_applied", "deploy"
        message = "no deployment of the resource succeeded yet: the edge has no route"
    elif runtime_health != "healthy":
        reason, action = "runtime_not_ready", "check-health"
        message = f"the route is applied but the runtime is {runtime_health}"
    return GeneratedRouteIntentStatus(
        route_id=f"route:generated:{resource_id}",
        diagnostic_id=f"diag:generated:{resource_id}",
        intent=RouteIntent(
            host=route.domains[0],
            path_prefix=route.path_prefix or "/",
            protocol="http",
            route_behavior="serve",
            redirect_to=None,
            redirect_status=None,
        ),
        context=RouteContext(
            resource_id=resource_id,
            deployment_id=row.id,
            server_id=row.server_id,
            destination_id=None,
            runtime_target_kind=plan.target.kind if plan and plan.target else None,
        ),
        proxy=GeneratedRouteProxy(applied="applied" if served else "not-configured"),
        runtime_health=runtime_health,
        latest_observation=RouteObservation(
            observed_at=observed_at,
            request_id=request_id,
            deployment_id=row.id if served else None,
        )
        if observed_at is not None
        else None,
        blocking_reason=reason,
        recommended_action=action,
        copy_safe_summary=CopySafeSummary(
            status="blocked" if reason else "available",
            code=reason,
            phase=("routing" if not served else "runtime-health") if reason else None,
            message=message,
        ),
    )
