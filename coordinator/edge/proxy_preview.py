"""``GET /resources/{id}/proxy-configuration``: the routes a resource should have at the edge,
compared with what the agent's Caddy holds right now (read back over the agent link)."""

import json
from datetime import datetime
from typing import Any, Final, Literal

from coordinator.auth import Principal
from coordinator.db import models
from coordinator.default_access import default_access_routes
from coordinator.domains.edge_routes import domain_routes
from coordinator.hub.registry import Registry
from coordinator.lookup import get_deployment
from shared.errors import InvalidRequest, NotFound, PlatformError
from shared.messages.deploy import DomainRoute
from shared.messages.edge import AppliedRoute, EdgeInspect, EdgeInspection
from shared.wire import WireModel

PROVIDER_KEY: Final = "caddy"
INSPECT_TIMEOUT_SECONDS: Final = 15.0
RouteScope = Literal["planned", "latest", "deployment-snapshot"]
PreviewStatus = Literal["not-configured", "applied", "partially-applied", "not-applied", "unknown"]


class AppliedRouteContext(WireModel):
    """``applied-route-context/v1``: where and when a route was seen applied."""

    schema_version: Literal["applied-route-context/v1"] = "applied-route-context/v1"
    resource_id: str
    deployment_id: str | None
    domain_binding_id: str | None
    server_id: str
    destination_id: str | None = None
    route_id: str
    diagnostic_id: str | None = None
    route_source: Literal["generated-default", "durable-domain"]
    hostname: str
    path_prefix: str
    proxy_kind: str = PROVIDER_KEY
    provider_key: str = PROVIDER_KEY
    applied_at: datetime | None
    observed_at: datetime


class PreviewRoute(WireModel):
    """One route the resource should have."""

    hostname: str
    scheme: Literal["http", "https"]
    url: str
    path_prefix: str
    tls_mode: str
    target_port: int | None
    source: Literal["generated-default", "durable-domain"]
    route_behavior: Literal["serve", "redirect"]
    redirect_to: str | None
    redirect_status: int | None
    applied_route_context: AppliedRouteContext | None


class PreviewSection(WireModel):
    """A block of the edge's configuration, as Caddy holds it."""

    id: str
    title: str
    format: Literal["caddy-json"] = "caddy-json"
    language: Literal["json"] = "json"
    readonly: bool = True
    redacted: bool = False
    content: str
    source: Literal["proxy-applied"] = "proxy-applied"


class PreviewWarning(WireModel):
    """Why the preview may be incomplete or the edge differs."""

    code: str
    message: str
    details: dict[str, str] = {}


class TlsRouteDiagnostic(WireModel):
    """How one bound domain is served over TLS."""

    hostname: str
    path_prefix: str
    tls_mode: str
    scheme: Literal["http", "https"]
    automation: Literal["acme-http-01", "acme-on-demand", "disabled"]
    certificate_source: Literal["acme", "imported", "none"]
    appaloft_certificate_managed: bool
    message: str
    details: dict[str, str] = {}


class PreviewDiagnostics(WireModel):
    """Counts and per-route details (``includeDiagnostics=true``)."""

    provider_key: str = PROVIDER_KEY
    route_count: int
    network_name: str | None = None
    tls_routes: list[TlsRouteDiagnostic]
    applied_route_contexts: list[AppliedRouteContext]
    metadata: dict[str, str]


class ProxyConfigurationPreview(WireModel):
    """The reference's proxy configuration preview."""

    resource_id: str
    deployment_id: str | None
    provider_key: str = PROVIDER_KEY
    route_scope: RouteScope
    status: PreviewStatus
    generated_at: datetime
    last_applied_deployment_id: str | None
    stale: bool
    routes: list[PreviewRoute]
    sections: list[PreviewSection]
    warnings: list[PreviewWarning]
    diagnostics: PreviewDiagnostics | None


async def _deployment(
    actor: Principal, resource_id: str, scope: RouteScope, deployment_id: str | None
) -> models.Deployment | None:
    if scope == "deployment-snapshot" or deployment_id is not None:
        if deployment_id is None:
            raise InvalidRequest(
                "routeScope deployment-snapshot needs a deploymentId",
                details={"problems": [{"field": "deploymentId", "message": "required"}]},
            )
        row = await get_deployment(actor, deployment_id)
        if row.resource_id != resource_id:
            raise NotFound(f"deployment {deployment_id!r} not found")
        return row
    return (
        await models.Deployment.filter(resource_id=resource_id, status="succeeded")
        .order_by("-created_at", "-id")
        .first()
    )


def _default_access(deployment: models.Deployment | None, prefix: str) -> list[DomainRoute]:
    """The generated default-access route the deployment's plan carried (policy at plan time)."""
    execution = (deployment.runtime_plan or {}).get("execution") if deployment else None
    meta = execution.get("metadata") if isinstance(execution, dict) else None
    planned = meta.get("defaultAccess") if isinstance(meta, dict) else None
    return default_access_routes(planned, prefix)


def _generated(deployment: models.Deployment | None) -> tuple[list[str], str, int | None]:
    """Host names, path prefix and target port the deployment's plan routed."""
    execution = (deployment.runtime_plan or {}).get("execution") if deployment else None
    routes = execution.get("accessRoutes") if isinstance(execution, dict) else None
    first: dict[str, Any] = routes[0] if isinstance(routes, list) and routes else {}
    port = first.get("targetPort")
    return (
        [str(h) for h in first.get("domains") or []],
        str(first.get("pathPrefix") or "/"),
        port if isinstance(port, int) else None,
    )


async def _inspect(
    registry: Registry, server_id: str, resource_id: str, warnings: list[PreviewWarning]
) -> EdgeInspection | None:
    session = registry.get(server_id)
    if session is None:
        warnings.append(
            PreviewWarning(
                code="agent-offline",
                message="the server's agent is offline: the applied configuration is unknown",
                details={"serverId": server_id},
            )
        )
        return None
    try:
        reply = await session.request(
            lambda i: EdgeInspect(id=i, resource_id=resource_id), INSPECT_TIMEOUT_SECONDS
        )
    except PlatformError as exc:
        reply = None
        failure = exc.message
    else:
        failure = reply.error.message if isinstance(reply, EdgeInspection) and reply.error else ""
    if isinstance(reply, EdgeInspection) and not failure:
        return reply
    warnings.append(
        PreviewWarning(
            code="edge-unreadable",
            message=f"the agent could not read its edge's routes: {failure or 'no answer'}",
            details={"serverId": server_id},
        )
    )
    return None


def _hosts(route: AppliedRoute) -> list[str]:
    matches = route.config.get("match") or []
    first = matches[0] if isinstance(matches, list) and matches else {}
    return [str(h) for h in first.get("host") or []] if isinstance(first, dict) else []


def _section(kind: str, routes: list[AppliedRoute]) -> PreviewSection:
    server = "berth" if kind == "http" else "berth-tls"
    return PreviewSection(
        id=f"caddy-{kind}-routes",
        title=f"Caddy routes on the {kind.upper()} server '{server}'",
        content=json.dumps([r.config for r in routes], indent=2, sort_keys=True),
    )


def _binding_scheme(binding: DomainRoute, inspection: EdgeInspection | None) -> str:
    https = binding.tls_mode == "auto" and inspection is not None and inspection.tls_listen
    return "https" if https else "http"


def _tls_diagnostic(binding: DomainRoute, scheme: str) -> TlsRouteDiagnostic:
    managed = binding.tls_mode == "auto"
    on_https = scheme == "https"
    return TlsRouteDiagnostic(
        hostname=binding.domain_name,
        path_prefix=binding.path_prefix,
        tls_mode=binding.tls_mode,
        scheme="https" if on_https else "http",
        automation="acme-http-01" if on_https and managed else "disabled",
        certificate_source=(
            "acme"
            if on_https and managed
            else "imported"
            if binding.tls_mode == "imported"
            else "none"
        ),
        appaloft_certificate_managed=managed,
        message=(
            "served over HTTPS with a certificate Caddy obtains over ACME"
            if on_https and managed
            else "served over plain HTTP"
            + ("" if binding.tls_mode == "disabled" else ": the edge has no HTTPS listener")
        ),
    )


async def preview(
    actor: Principal,
    resource: models.Resource,
    registry: Registry,
    *,
    route_scope: RouteScope,
    deployment_id: str | None,
    include_diagnostics: bool,
    now: datetime,
) -> ProxyConfigurationPreview:
    """The routes the resource should have, each with where Caddy applied it, and Caddy's JSON."""
    deployment = await _deployment(actor, resource.id, route_scope, deployment_id)
    latest = (
        await models.Deployment.filter(resource_id=resource.id, status="succeeded")
        .order_by("-created_at", "-id")
        .first()
    )
    warnings: list[PreviewWarning] = []
    hostnames, path_prefix, port = _generated(deployment)
    server_id = deployment.server_id if deployment else None
    bindings = await domain_routes(resource.id, server_id) if server_id else []
    inspection = await _inspect(registry, server_id, resource.id, warnings) if server_id else None
    if deployment is None:
        warnings.append(
            PreviewWarning(code="not-deployed", message="the resource has no successful deployment")
        )
    applied = {r.route_id: r for r in inspection.routes} if inspection else {}
    own = f"berth-{resource.id}"

    def context(
        route_id: str, source: Literal["generated-default", "durable-domain"], host: str,
        prefix: str, binding_id: str | None,
    ) -> AppliedRouteContext | None:  # fmt: skip
        if inspection is None or server_id is None or route_id not in applied:
            return None
        return AppliedRouteContext(
            resource_id=resource.id,
            deployment_id=latest.id if latest else None,
            domain_binding_id=binding_id,
            server_id=server_id,
            route_id=route_id,
            route_source=source,
            hostname=host,
            path_prefix=prefix,
            applied_at=latest.finished_at if latest else None,
            observed_at=inspection.observed_at,
        )

    routes: list[PreviewRoute] = []
    expected: set[str] = set()
    if hostnames:
        expected.add(own)
    for host in hostnames:
        routes.append(
            PreviewRoute(
                hostname=host,
                scheme="http",
                url=f"http://{host}{'' if path_prefix == '/' else path_prefix}",
                path_prefix=path_prefix,
                tls_mode="disabled",
                target_port=port,
                source="generated-default",
                route_behavior="serve",
                redirect_to=None,
                redirect_status=None,
                applied_route_context=context(own, "generated-default", host, path_prefix, None),
            )
        )
    tls_routes: list[TlsRouteDiagnostic] = []
    for generated in _default_access(deployment, path_prefix):
        route_id = f"{own}.{generated.id}"
        expected.add(route_id)
        scheme = _binding_scheme(generated, inspection)
        held = generated.certificate_only
        on_demand = scheme == "https" and not held
        mode = "certificate" if held else "on-demand" if generated.on_demand else "disabled"
        host = generated.domain_name
        tls_routes.append(
            TlsRouteDiagnostic(
                hostname=host,
                path_prefix=path_prefix,
                tls_mode=mode,
                scheme=scheme,  # type: ignore[arg-type]
                automation="acme-on-demand" if on_demand else "disabled",
                certificate_source="acme" if on_demand else "imported" if held else "none",
                appaloft_certificate_managed=on_demand,
                message=(
                    "default access name: Caddy obtains its certificate over ACME on the first "
                    "HTTPS request, after the agent's ask check"
                    if on_demand
                    else "default access name: served only with a certificate for "
                    f"*.{host.partition('.')[2]} the edge holds (never ordered)"
                    if held and scheme == "https"
                    else "default access name served over plain HTTP"
                ),
            )
        )
        routes.append(
            PreviewRoute(
                hostname=host,
                scheme=scheme,  # type: ignore[arg-type]
                url=f"{scheme}://{host}{'' if path_prefix == '/' else path_prefix}",
                path_prefix=path_prefix,
                tls_mode=mode,
                target_port=port,
                source="generated-default",
                route_behavior="serve",
                redirect_to=None,
                redirect_status=None,
                applied_route_context=context(
                    route_id, "generated-default", host, path_prefix, None
                ),
            )
        )
    for binding in bindings:
        route_id = f"{own}.{binding.id}"
        expected.add(route_id)
        scheme = _binding_scheme(binding, inspection)
        tls_routes.append(_tls_diagnostic(binding, scheme))
        prefix = binding.path_prefix
        routes.append(
            PreviewRoute(
                hostname=binding.domain_name,
                scheme="https" if scheme == "https" else "http",
                url=f"{scheme}://{binding.domain_name}{'' if prefix == '/' else prefix}",
                path_prefix=prefix,
                tls_mode=binding.tls_mode,
                target_port=port,
                source="durable-domain",
                route_behavior="redirect" if binding.redirect_to else "serve",
                redirect_to=binding.redirect_to,
                redirect_status=(binding.redirect_status or 301) if binding.redirect_to else None,
                applied_route_context=context(
                    route_id, "durable-domain", binding.domain_name, prefix, binding.id
                ),
            )
        )
    # The plain-HTTP redirect twins of HTTPS bindings are not routes of their own here.
    present = {i for i in applied if not i.endswith(".http")}
    status: PreviewStatus
    if not expected:
        status = "not-configured" if not present else "partially-applied"
    elif inspection is None:
        status = "unknown"
    elif expected <= present:
        status = "applied"
    else:
        status = "partially-applied" if expected & present else "not-applied"
    main = applied.get(own)
    drifted = main is not None and sorted(_hosts(main)) != sorted(hostnames)
    stale = inspection is None or present != expected or drifted
    if inspection is not None:
        for missing in sorted(expected - present):
            warnings.append(
                PreviewWarning(
                    code="route-not-applied",
                    message=f"route {missing} is not in the edge's configuration: redeploy",
                    details={"routeId": missing},
                )
            )
        for extra in sorted(present - expected):
            warnings.append(
                PreviewWarning(
                    code="route-not-planned",
                    message=f"route {extra} is still at the edge: redeploy to remove it",
                    details={"routeId": extra},
                )
            )
    by_kind: dict[str, list[AppliedRoute]] = {}
    for route in applied.values():
        by_kind.setdefault(route.server, []).append(route)
    contexts = [r.applied_route_context for r in routes if r.applied_route_context]
    return ProxyConfigurationPreview(
        resource_id=resource.id,
        deployment_id=deployment.id if deployment else None,
        route_scope=route_scope,
        status=status,
        generated_at=now,
        last_applied_deployment_id=latest.id if latest else None,
        stale=stale,
        routes=routes,
        sections=[_section(kind, by_kind[kind]) for kind in sorted(by_kind)],
        warnings=warnings,
        diagnostics=(
            PreviewDiagnostics(
                route_count=len(routes),
                tls_routes=tls_routes,
                applied_route_contexts=contexts,
                metadata={
                    "listen": inspection.listen if inspection else "",
                    "tlsListen": (inspection.tls_listen or "") if inspection else "",
                },
            )
            if include_diagnostics
            else None
        ),
    )
