"""Attribution checks: which containers' reported project/environment/resource ids are trusted."""

import time
from typing import Any, Final

from coordinator.db import models
from shared.messages.monitoring import Sample

# An unknown resource id is looked up again after this long (it may be created meanwhile).
_UNKNOWN_RETRY_SECONDS: Final = 30.0


class AttributionCheck:
    """Decides whether a container's reported project/environment/resource ids are plausible.

    Agents report ids from container labels; a compromised agent could name another tenant's
    resource. Ids are stored as reported, but only containers whose resource belongs to the
    server's organization with the reported project and environment feed scope figures.
    Known rows are cached: resources never move between projects.
    """

    def __init__(self) -> None:
        self._resources: dict[str, tuple[str, str, str]] = {}
        self._deployments: dict[str, str] = {}
        self._servers: dict[str, str | None] = {}
        self._unknown_until: dict[str, float] = {}

    async def organization_of(self, server_id: str) -> str | None:
        """The organization owning ``server_id`` (cached)."""
        if server_id not in self._servers:
            row = await models.Server.get_or_none(id=server_id).values("organization_id")
            self._servers[server_id] = str(row["organization_id"]) if row else None
        return self._servers[server_id]

    async def load(self, samples: list[Sample]) -> None:
        """Fetch the resources and deployments named in ``samples`` that are not cached yet."""
        await self.load_ids(
            {c.resource_id for s in samples for c in s.containers if c.resource_id},
            {c.deployment_id for s in samples for c in s.containers if c.deployment_id},
        )

    async def load_ids(self, resources: set[str], deployments: set[str]) -> None:
        """Fetch the named resources and deployments that are not cached yet."""
        now = time.monotonic()
        recently_unknown = {k for k, until in self._unknown_until.items() if until > now}
        resource_ids = resources - self._resources.keys() - recently_unknown
        deployment_ids = deployments - self._deployments.keys() - recently_unknown
        if resource_ids:
            rows = await models.Resource.filter(id__in=list(resource_ids)).values(
                "id", "project_id", "environment_id", "project__organization_id"
            )
            found = {
                str(r["id"]): (
                    str(r["project__organization_id"]),
                    str(r["project_id"]),
                    str(r["environment_id"]),
                )
                for r in rows
            }
            for resource_id in resource_ids:
                if resource_id in found:
                    self._resources[resource_id] = found[resource_id]
                else:  # not cached for good: the resource may be created a moment later
                    self._unknown_until[resource_id] = now + _UNKNOWN_RETRY_SECONDS
        if deployment_ids:
            rows = await models.Deployment.filter(id__in=list(deployment_ids)).values(
                "id", "resource_id"
            )
            for row in rows:
                self._deployments[str(row["id"])] = str(row["resource_id"])
            for deployment_id in deployment_ids - self._deployments.keys():
                self._unknown_until[deployment_id] = now + _UNKNOWN_RETRY_SECONDS
        if len(self._unknown_until) > 10_000:
            self._unknown_until = {k: u for k, u in self._unknown_until.items() if u > now}

    def trusted(self, organization_id: str | None, container: dict[str, Any]) -> bool:
        """Whether ``container``'s attribution may feed scope figures (after ``load``)."""
        resource_id = container.get("resourceId")
        if not resource_id or organization_id is None:
            return False
        known = self._resources.get(str(resource_id))
        if known is None:
            return False
        org, project_id, environment_id = known
        if org != organization_id:
            return False
        if container.get("projectId") not in (None, project_id):
            return False
        if container.get("environmentId") not in (None, environment_id):
            return False
        deployment_id = container.get("deploymentId")
        if deployment_id is not None and self._deployments.get(str(deployment_id)) != resource_id:
            return False
        # Fill what the labels left out, so project/environment scopes see the container.
        container["projectId"] = project_id
        container["environmentId"] = environment_id
        return True
