"""The ``route-intent-status/v1`` view of a binding: what the edge should do, why not yet."""

from typing import Literal

from coordinator.api.domain_schemas import (
    CopySafeSummary,
    DomainBindingItem,
    DomainRouteObservation,
    RouteContext,
    RouteIntent,
    RouteIntentStatus,
    RouteProxy,
    RouteReadiness,
)


def _blocking_reason(item: DomainBindingItem) -> tuple[str | None, str]:
    """(reason code, recommended action) for the first thing that keeps the route from serving."""
    if item.status != "bound":
        return "domain_ownership_pending", "confirm-ownership"
    if item.dns_observation.status != "matched":
        return f"dns_{item.dns_observation.status.replace('-', '_')}", "fix-dns"
    return None, "none"


def route_readiness(
    item: DomainBindingItem, observation: DomainRouteObservation | None = None
) -> RouteReadiness:
    """Ready once ownership is proven and DNS points at the server.

    ``observation``: the deployment whose edge was reported serving the route, if any.
    """
    behavior: Literal["serve", "redirect"] = "redirect" if item.redirect_to else "serve"
    reason, action = _blocking_reason(item)
    selected = RouteIntentStatus(
        route_id=f"route:{item.id}",
        diagnostic_id=f"diag:{item.id}",
        source="domain-binding",
        intent=RouteIntent(
            host=item.domain_name,
            path_prefix=item.path_prefix,
            protocol="http" if item.tls_mode == "disabled" else "https",
            route_behavior=behavior,
            redirect_to=item.redirect_to,
            redirect_status=item.redirect_status,
        ),
        context=RouteContext(
            resource_id=item.resource_id,
            deployment_id=None,
            server_id=item.server_id,
            destination_id=item.destination_id,
            runtime_target_kind=None,
        ),
        proxy=RouteProxy(
            intent="not-required" if item.proxy_kind == "none" else "required",
            applied="not-configured",
            provider_key=None if item.proxy_kind == "none" else item.proxy_kind,
        ),
        domain_verification="verified" if item.status == "bound" else "pending",
        tls="disabled" if item.tls_mode == "disabled" else "pending",
        runtime_health="unknown",
        latest_observation=observation,
        blocking_reason=reason,
        recommended_action=action,
        copy_safe_summary=CopySafeSummary(
            status="blocked" if reason else "available",
            code=reason,
            phase="domain-verification" if reason else None,
            message=item.dns_observation.message
            if reason and reason.startswith("dns_")
            else ("ownership of the domain is not proven yet" if reason else "route is ready"),
        ),
    )
    return RouteReadiness(
        status="not-ready" if reason else "ready",
        route_behavior=behavior,
        selected_route=selected,
        context_routes=[],
    )
