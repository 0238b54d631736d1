"""Plan-time checks of a resource's ``networkProfile.hostPort`` on its target server."""

from dataclasses import dataclass

from coordinator.db import models
from coordinator.resource_config import ResourceConfig, network_profile


@dataclass(frozen=True)
class PortProblem:
    """A blocking reason about the hostPort (the planner turns it into an ``Issue``)."""

    code: str
    message: str
    recommendation: str
    entity_id: str


async def host_port_problems(
    resource: models.Resource, server: models.Server, config: ResourceConfig
) -> list[PortProblem]:
    """Why the resource's hostPort cannot be published on ``server`` (none when it can).

    Another resource holds the port when its newest deployment on the server is live
    (succeeded, or still on its way) with the same hostPort in the profile it runs with now.
    """
    port = config.network_profile.get("hostPort")
    if not isinstance(port, int):
        return []
    issues: list[PortProblem] = []
    replicas = int((config.runtime_profile or {}).get("replicas") or 1)
    if replicas > 1:
        issues.append(
            PortProblem(
                "host-port-replicas",
                f"hostPort {port} can be held by one container only, not {replicas} replicas",
                "set runtimeProfile.replicas to 1 or remove networkProfile.hostPort",
                resource.id,
            )
        )
    others = (
        await models.Deployment.filter(server_id=server.id)
        .exclude(resource_id=resource.id)
        .distinct()
        .values_list("resource_id", flat=True)
    )
    for other_id in sorted({str(r) for r in others}):
        newest = (
            await models.Deployment.filter(resource_id=other_id, server_id=server.id)
            .order_by("-created_at", "-id")
            .first()
        )
        if newest is None or newest.status in ("failed", "canceled"):
            continue
        other = await models.Resource.get_or_none(id=other_id)
        if other is None or other.lifecycle_status != "active":
            continue
        if network_profile(other).get("hostPort") == port:
            issues.append(
                PortProblem(
                    "host-port-conflict",
                    f"host port {port} on server {server.name!r} is held by resource "
                    f"{other.name!r} ({other.id})",
                    "choose another networkProfile.hostPort or remove the other resource's",
                    other.id,
                )
            )
    return issues
