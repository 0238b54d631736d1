"""Typed read views of a resource's stored source and profiles (the reference's field names).

Profiles are stored as JSON and read with their defaults filled in; these models document
that shape in ``/openapi.json`` (instead of free-form objects) and every read validates the
stored JSON through them. Fields are optional: a row written by an older release may lack one.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import SerializerFunctionWrapHandler, model_serializer

from coordinator import resource_config
from coordinator.api.deployment_views import RuntimePlanHealthCheck, edge_route
from coordinator.db import models
from coordinator.deployments.planner import generated_hostname
from coordinator.edge.access_failures import ResourceAccessFailure
from shared.wire import WireModel


class ResourceSource(WireModel):
    """The configured source: a prebuilt image, or a folder uploaded as an archive."""

    kind: str
    locator: str | None = None
    display_name: str | None = None
    base_directory: str | None = None
    metadata: dict[str, str] | None = None
    image_name: str | None = None
    image_tag: str | None = None
    image_digest: str | None = None

    # No return annotation on purpose: pydantic would document the annotation (a free-form
    # dict) instead of the model's own fields.
    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # Each kind answers with its own fields only, as stored (an image has no locator).
        dumped: dict[str, Any] = handler(self)
        fields = type(self).model_fields
        kept = {fields[name].alias or name for name in self.model_fields_set}
        return {key: value for key, value in dumped.items() if key in kept}


class ResourceHealthPolicy(RuntimePlanHealthCheck):
    """When a candidate counts as healthy before it receives traffic."""


class ResourceRuntimeProfile(WireModel):
    """How the resource runs: strategy, command, limits and replica count."""

    strategy: str | None = None
    start_command: str | None = None
    dockerfile_path: str | None = None
    build_target: str | None = None
    cpus: float | None = None
    memory_bytes: int | None = None
    replicas: int | None = None
    rollout_strategy: str | None = None
    # The reference keeps the health check in the runtime profile too; Berth's one policy
    # (``healthPolicy``) is shown in both places.
    health_check_path: str | None = None
    health_check: ResourceHealthPolicy | None = None


def runtime_view(profile: dict[str, Any], health: dict[str, Any]) -> ResourceRuntimeProfile:
    """A runtime profile (defaults filled) with the resource's health policy beside it."""
    path = (health.get("http") or {}).get("path")
    return ResourceRuntimeProfile.model_validate(
        {**profile, "healthCheckPath": path, "healthCheck": health}
    )


class ResourceNetworkProfile(WireModel):
    """Which container port serves traffic and whether the edge proxy exposes it."""

    internal_port: int | None = None
    upstream_protocol: str | None = None
    exposure_mode: str | None = None
    target_service_name: str | None = None
    host_port: int | None = None


class ResourceAccessProfile(WireModel):
    """How generated access routes are made for the resource."""

    generated_access_mode: str | None = None
    path_prefix: str | None = None


class PlannedAccessRoute(WireModel):
    """The route the resource's next deployment will get (what the planner would generate)."""

    url: str
    hostname: str
    scheme: Literal["http"] = "http"
    provider_key: Literal["caddy"] = "caddy"
    path_prefix: str | None
    proxy_kind: Literal["edge"] = "edge"
    target_port: int | None


def planned_route(
    row: models.Resource, project: models.Project, environment: models.Environment, edge: str
) -> PlannedAccessRoute | None:
    """The planner's route for the resource now; none when its network profile exposes nothing."""
    network = resource_config.network_profile(row)
    if network.get("exposureMode") != "reverse-proxy" or not network.get("internalPort"):
        return None
    hostname = generated_hostname(project.slug, environment.name, row.slug, edge)
    return PlannedAccessRoute(
        url=f"http://{hostname}",
        hostname=hostname,
        path_prefix=resource_config.access_profile(row).get("pathPrefix") or "/",
        target_port=network.get("internalPort"),
    )


class GeneratedAccessRoute(WireModel):
    """A route Berth generated on the edge proxy for one deployment."""

    url: str
    hostname: str
    # HTTPS for a default access name with TLS (on-demand or a held certificate); else HTTP.
    scheme: Literal["http", "https"] = "http"
    provider_key: Literal["caddy"] = "caddy"
    deployment_id: str
    deployment_status: str
    path_prefix: str | None
    proxy_kind: str | None
    target_port: int | None
    updated_at: datetime


class DomainAccessRoute(WireModel):
    """The route of the resource's newest bound domain binding (the coordinator's record)."""

    url: str
    hostname: str
    scheme: Literal["http", "https"]
    provider_key: str | None
    # The durable route is the binding's (no deployment); the server-applied one names the
    # deployment whose success made the agent's edge serve it.
    deployment_id: str | None = None
    deployment_status: str | None = None
    path_prefix: str
    proxy_kind: str
    target_port: int | None
    updated_at: datetime


def domain_route(binding: models.DomainBinding, target_port: int | None) -> DomainAccessRoute:
    """A bound binding as an access route (https unless its TLS mode is disabled)."""
    scheme: Literal["http", "https"] = "http" if binding.tls_mode == "disabled" else "https"
    path = "" if binding.path_prefix == "/" else binding.path_prefix
    return DomainAccessRoute(
        url=f"{scheme}://{binding.domain_name}{path}",
        hostname=binding.domain_name,
        scheme=scheme,
        provider_key=None if binding.proxy_kind == "none" else binding.proxy_kind,
        path_prefix=binding.path_prefix,
        proxy_kind=binding.proxy_kind,
        target_port=target_port,
        updated_at=binding.ownership_confirmed_at or binding.created_at,
    )


def applier(
    binding: models.DomainBinding, deployments: list[models.Deployment]
) -> models.Deployment | None:
    """The deployment whose edge serves ``binding`` (``deployments`` newest first), else None.

    The agent reports the routes its edge serves when a deployment succeeds, and only the
    resource's newest deployment's report counts (``domains.edge_routes.record_routed``): while
    the binding reads ``ready`` that is the newest succeeded deployment on its server.
    """
    if binding.proxy_readiness != "ready":
        return None
    return next(
        (
            row
            for row in deployments
            if row.status == "succeeded"
            and (binding.server_id is None or row.server_id == binding.server_id)
        ),
        None,
    )


def applied_route(
    binding: models.DomainBinding | None,
    deployments: list[models.Deployment],
    target_port: int | None,
) -> DomainAccessRoute | None:
    """The binding's route as the server's edge applied it (null until an agent reported it)."""
    applied = applier(binding, deployments) if binding is not None else None
    if binding is None or applied is None:
        return None
    return domain_route(binding, target_port).model_copy(
        update={
            "deployment_id": applied.id,
            "deployment_status": applied.status,
            "updated_at": applied.finished_at or applied.created_at,
        }
    )


def default_access_name(row: models.Deployment) -> tuple[str, Literal["http", "https"]] | None:
    """The default access host name a deployment's plan carried, and its scheme."""
    execution = (row.runtime_plan or {}).get("execution")
    meta = execution.get("metadata") if isinstance(execution, dict) else None
    planned = meta.get("defaultAccess") if isinstance(meta, dict) else None
    if not isinstance(planned, dict) or not planned.get("hostname"):
        return None
    https = planned.get("tlsMode") in ("on-demand", "certificate")
    return str(planned["hostname"]), "https" if https else "http"


class AccessSummary(WireModel):
    """Where the resource is reached: its next, its newest and its served generated route."""

    planned_generated_access_route: PlannedAccessRoute | None
    latest_generated_access_route: GeneratedAccessRoute | None
    latest_durable_domain_route: DomainAccessRoute | None = None
    # The durable route once the server's edge (Caddy) serves it, with the applying deployment.
    latest_server_applied_domain_route: DomainAccessRoute | None = None
    # ``ready`` once a deployment with a route succeeded: the agent switches the edge route
    # only then, so that deployment's route is live until the next one succeeds.
    proxy_route_status: Literal["ready", "not-ready", "not-configured"]
    last_route_realization_deployment_id: str | None
    # The newest request the edge could not serve for this resource (kept 24 h), else null.
    latest_access_failure_diagnostic: ResourceAccessFailure | None = None


def access_summary(
    deployments: list[models.Deployment],
    planned: PlannedAccessRoute | None,
    durable: DomainAccessRoute | None = None,
    failure: ResourceAccessFailure | None = None,
    applied: DomainAccessRoute | None = None,
) -> AccessSummary:
    """The access summary from the resource's deployments (newest first)."""
    routed = [(row, route) for row in deployments if (route := edge_route(row)) is not None]
    serving = next((row for row, _ in routed if row.status == "succeeded"), None)
    latest: GeneratedAccessRoute | None = None
    if routed:
        row, route = routed[0]
        host, scheme = default_access_name(row) or (route.domains[0], "http")
        latest = GeneratedAccessRoute(
            url=f"{scheme}://{host}",
            hostname=host,
            scheme=scheme,
            deployment_id=row.id,
            deployment_status=row.status,
            path_prefix=route.path_prefix,
            proxy_kind=route.proxy_kind,
            target_port=route.target_port,
            updated_at=row.finished_at or row.started_at or row.created_at,
        )
    status: Literal["ready", "not-ready", "not-configured"] = (
        "ready" if serving else ("not-ready" if routed else "not-configured")
    )
    return AccessSummary(
        planned_generated_access_route=planned,
        latest_generated_access_route=latest,
        latest_durable_domain_route=durable,
        latest_server_applied_domain_route=applied,
        proxy_route_status=status,
        last_route_realization_deployment_id=serving.id if serving else None,
        latest_access_failure_diagnostic=failure,
    )


def source_view(stored: dict[str, Any] | None) -> ResourceSource | None:
    """The stored source through its model."""
    return ResourceSource.model_validate(stored) if stored else None


def network_view(profile: dict[str, Any]) -> ResourceNetworkProfile:
    """A network profile (defaults filled) through its model."""
    return ResourceNetworkProfile.model_validate(profile)


def access_view(profile: dict[str, Any]) -> ResourceAccessProfile:
    """An access profile (defaults filled) through its model."""
    return ResourceAccessProfile.model_validate(profile)
