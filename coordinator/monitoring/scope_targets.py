"""Monitoring scopes of usage and thresholds: parse one, check the caller may see it, and read
the servers, names and latest samples it covers."""

from dataclasses import dataclass, field

from coordinator.auth import Principal
from coordinator.db import models
from coordinator.hub.registry import Registry
from coordinator.monitoring.usage import (
    MonitoringScope,
    MonitoringScopeKind,
    ServerReading,
    latest_sample,
)
from shared.errors import InvalidRequest, NotFound


@dataclass(frozen=True)
class ScopeTarget:
    """A scope the caller may see, with what usage and thresholds need to know about it."""

    scope: MonitoringScope
    organization_id: str
    # Servers whose samples can hold the scope's containers (one for server/deployment scopes).
    server_ids: list[str]
    # Display names of the scope and the projects/environments/resources under it.
    names: dict[str, str] = field(default_factory=dict)


def scope_from_parts(kind: str | None, ids: dict[str, str | None]) -> MonitoringScope:
    """Build a scope from a kind and ``<kind>_id`` values; 400 when they do not fit together.

    Without a kind, the single id given decides it (``serverId=...`` alone means a server).
    """
    given = {name: value for name, value in ids.items() if value}
    if kind is None:
        if len(given) != 1:
            raise InvalidRequest(
                "name the scope: scope.kind plus its id (e.g. scope.kind=server&scope.serverId=...)"
            )
        kind = next(iter(given)).removesuffix("_id")
    if f"{kind}_id" not in ids:
        raise InvalidRequest(f"unknown scope kind {kind!r}")
    if not given.get(f"{kind}_id"):
        raise InvalidRequest(f"a {kind} scope needs {kind}Id")
    return MonitoringScope.model_validate({"kind": kind, f"{kind}_id": given[f"{kind}_id"]})


async def _servers_of(**filters: str) -> list[str]:
    rows = await models.Deployment.filter(**filters).distinct().values_list("server_id", flat=True)
    return sorted({str(r) for r in rows})


async def resolve_scope(actor: Principal, scope: MonitoringScope) -> ScopeTarget:
    """Check the scope exists and is visible to ``actor`` (``NotFound`` otherwise)."""
    kind: MonitoringScopeKind = scope.kind
    target = scope.target_id
    org = actor.organization_id
    missing = NotFound(f"{kind} {target!r} not found")
    if kind == "server":
        server = await models.Server.get_or_none(id=target, organization_id=org)
        if server is None or not actor.can_see_server(server.id):
            raise missing
        return ScopeTarget(scope, org, [server.id], {server.id: server.name})
    if kind == "deployment":
        deployment = await models.Deployment.get_or_none(id=target, organization_id=org)
        if deployment is None or not actor.can_see_resource(
            deployment.project_id, deployment.environment_id, deployment.resource_id
        ):
            raise missing
        names = await _names([deployment.project_id])
        return ScopeTarget(scope, org, [deployment.server_id], names)
    if kind == "project":
        project = await models.Project.get_or_none(id=target, organization_id=org)
        if project is None or not actor.can_see_project(project.id):
            raise missing
        return ScopeTarget(
            scope, org, await _servers_of(project_id=project.id), await _names([project.id])
        )
    if kind == "environment":
        environment = await models.Environment.get_or_none(id=target, project__organization_id=org)
        if environment is None or not actor.can_see_environment(
            environment.project_id,  # type: ignore[attr-defined]
            environment.id,
        ):
            raise missing
        return ScopeTarget(
            scope,
            org,
            await _servers_of(environment_id=environment.id),
            await _names([environment.project_id]),  # type: ignore[attr-defined]
        )
    resource = await models.Resource.get_or_none(id=target, project__organization_id=org)
    if resource is None or not actor.can_see_resource(
        resource.project_id,  # type: ignore[attr-defined]
        resource.environment_id,  # type: ignore[attr-defined]
        resource.id,
    ):
        raise missing
    return ScopeTarget(
        scope,
        org,
        await _servers_of(resource_id=resource.id),
        await _names([resource.project_id]),  # type: ignore[attr-defined]
    )


async def _names(project_ids: list[str]) -> dict[str, str]:
    """Names of the projects, their environments and resources (cheap: three small queries)."""
    names: dict[str, str] = {}
    for project in await models.Project.filter(id__in=project_ids):
        names[project.id] = project.name
    for environment in await models.Environment.filter(project_id__in=project_ids):
        names[environment.id] = environment.name
    for resource in await models.Resource.filter(project_id__in=project_ids):
        names[resource.id] = resource.name
    return names


async def organization_names(organization_id: str) -> dict[str, str]:
    """Names of every project, environment and resource of the organization (server scopes)."""
    ids = await models.Project.filter(organization_id=organization_id).values_list("id", flat=True)
    return await _names([str(i) for i in ids])


async def server_readings(
    actor: Principal, registry: Registry, server_ids: list[str]
) -> list[ServerReading]:
    """The newest sample and link state of each server (one indexed query per server)."""
    servers = {
        s.id: s
        for s in await models.Server.filter(
            id__in=server_ids, organization_id=actor.organization_id
        )
    }
    readings: list[ServerReading] = []
    for server_id in server_ids:
        server = servers.get(server_id)
        if server is None or not actor.can_see_server(server_id):
            continue
        readings.append(
            ServerReading(
                server_id=server_id,
                server_name=server.name,
                online=registry.get(server_id) is not None,
                sample=await latest_sample(server_id),
            )
        )
    return readings
