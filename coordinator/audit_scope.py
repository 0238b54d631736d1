"""Which audit events a token may read: a scoped token sees only events about what it reaches.

A token limited to projects, environments, resources or servers sees an event only when the
thing the event is about (its aggregate: a project, a resource, a deployment, a server, a
terminal session, a threshold policy, a deploy token) lies within that scope, by the same rules
the show routes use. Events about nothing in particular (bootstrap, monitoring prunes) and events
whose subject is gone (a deleted resource) are hidden from scoped tokens: when in doubt, hide.
Tokens without such limits see the whole organization's trail, as before.
"""

from collections.abc import Mapping
from typing import Any

from coordinator.auth import Principal
from coordinator.db import models, read_connection
from coordinator.token_scope import Bounds, within


def is_scoped(actor: Principal) -> bool:
    """Whether ``actor``'s token is limited to some projects, environments, resources or servers."""
    return bool(
        actor.project_ids or actor.environment_ids or actor.resource_ids or actor.server_ids
    )


class AuditVisibility:
    """Decides event by event for one caller; remembers the rows it looked up."""

    def __init__(self, actor: Principal) -> None:
        self._actor = actor
        self._scoped = is_scoped(actor)
        self._seen: dict[tuple[str, str], bool] = {}

    async def visible(self, event: models.AuditEvent) -> bool:
        """Whether the caller may read ``event``."""
        if not self._scoped:
            return True
        kind, subject, payload = event.aggregate_type, event.aggregate_id, event.payload or {}
        if subject is None:
            return False
        if kind == "terminal-session":
            return await self._terminal(payload)
        if kind == "threshold-policy":
            scope = payload.get("scope")
            if not isinstance(scope, Mapping):
                return False
            target_kind = scope.get("kind")
            target = scope.get(f"{target_kind}Id")
            return (
                isinstance(target_kind, str)
                and isinstance(target, str)
                and (await self._reaches(target_kind, target))
            )
        if kind == "domain-binding":
            # Every binding event names its resource: the binding is visible where it is.
            resource_id = payload.get("resourceId")
            return isinstance(resource_id, str) and await self._reaches("resource", resource_id)
        if kind in ("storage-volume", "dependency-resource"):
            # Their events name the project and environment they belong to (kept after deletion).
            project_id, environment_id = payload.get("projectId"), payload.get("environmentId")
            return (
                isinstance(project_id, str)
                and isinstance(environment_id, str)
                and self._actor.can_see_environment(project_id, environment_id)
            )
        reached = await self._reaches(kind, subject)
        server_id = payload.get("serverId")
        if reached and kind == "resource" and isinstance(server_id, str):
            # A resource's runtime action names the server it ran on.
            return self._actor.can_see_server(server_id)
        return reached

    async def _terminal(self, payload: Mapping[str, Any]) -> bool:
        server_id = payload.get("serverId")
        if not isinstance(server_id, str) or not self._actor.can_see_server(server_id):
            return False
        resource_id = payload.get("resourceId")
        if resource_id is None:
            # A host shell is about its server, as a server's own events are.
            return True
        return isinstance(resource_id, str) and await self._reaches("resource", resource_id)

    async def _reaches(self, kind: str, subject: str) -> bool:
        key = (kind, subject)
        if key not in self._seen:
            self._seen[key] = await self._look_up(kind, subject)
        return self._seen[key]

    async def _look_up(self, kind: str, subject: str) -> bool:
        actor = self._actor
        db = read_connection()
        if kind == "server":
            return actor.can_see_server(subject)
        if kind == "project":
            return actor.can_see_project(subject)
        if kind == "environment":
            environment = await models.Environment.get_or_none(id=subject, using_db=db)
            return environment is not None and actor.can_see_environment(
                environment.project_id,  # type: ignore[attr-defined]
                environment.id,
            )
        if kind == "resource":
            resource = await models.Resource.get_or_none(id=subject, using_db=db)
            return resource is not None and actor.can_see_resource(
                resource.project_id,  # type: ignore[attr-defined]
                resource.environment_id,  # type: ignore[attr-defined]
                resource.id,
            )
        if kind == "deployment":
            deployment = await models.Deployment.get_or_none(id=subject, using_db=db)
            return (
                deployment is not None
                and actor.can_see_server(deployment.server_id)
                and actor.can_see_resource(
                    deployment.project_id, deployment.environment_id, deployment.resource_id
                )
            )
        if kind == "deploy-token":
            # The same rule as the token routes: tokens wider than the caller look absent.
            token = await models.ApiToken.get_or_none(id=subject, using_db=db)
            return token is not None and within(
                Bounds.of(token.scope, token.expires_at), actor.bounds
            )
        return False
