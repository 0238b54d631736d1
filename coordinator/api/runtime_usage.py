"""``GET /runtime-usage/inspect``: current usage of a scope from stored samples."""

from typing import Literal

from pydantic import Field

from coordinator.api.monitoring_schemas import ScopeQuery
from coordinator.api.routing import Call, route
from coordinator.appkeys import REGISTRY_KEY
from coordinator.monitoring import scope_targets
from coordinator.monitoring.usage import (
    MonitoringScope,
    MonitoringScopeKind,
    UsageInspect,
    build_usage,
)
from shared.errors import InvalidRequest

TAG = "runtime-usage"
_ID = Field(default=None, min_length=1, max_length=40)


class UsageQuery(ScopeQuery):
    """Query of ``runtime-usage.inspect``: the scope flat (``scopeKind``...) or nested."""

    mode: Literal["current"] = "current"
    include_artifacts: bool = True
    include_warnings: bool = True
    scope_kind_flat: MonitoringScopeKind | None = Field(default=None, alias="scopeKind")
    server_id: str | None = _ID
    project_id: str | None = _ID
    environment_id: str | None = _ID
    resource_id: str | None = _ID
    deployment_id: str | None = _ID

    def scope(self) -> MonitoringScope:
        """The one scope asked for; 400 when none, or flat and nested disagree."""
        ids = {
            "server_id": self.server_id,
            "project_id": self.project_id,
            "environment_id": self.environment_id,
            "resource_id": self.resource_id,
            "deployment_id": self.deployment_id,
        }
        flat = None
        if self.scope_kind_flat is not None or any(ids.values()):
            flat = scope_targets.scope_from_parts(self.scope_kind_flat, ids)
        nested = self.nested_scope()
        if flat is not None and nested is not None and flat != nested:
            raise InvalidRequest("the flat and nested scope parameters name different scopes")
        chosen = flat or nested
        if chosen is None:
            raise InvalidRequest("name a scope: scopeKind=server&serverId=... (or scope.kind=...)")
        return chosen


@route(
    "GET",
    "/runtime-usage/inspect",
    summary="Current usage of a scope, attributed to projects, environments and resources",
    tag=TAG,
    permission="runtime-monitoring:read",
    query=UsageQuery,
    response=UsageInspect,
)
async def inspect(call: Call) -> UsageInspect:
    """``runtime-usage.inspect/v1`` from stored samples (never asks an agent, never mutates)."""
    query = call.query(UsageQuery)
    target = await scope_targets.resolve_scope(call.actor, query.scope())
    names = dict(target.names)
    if target.scope.kind == "server":
        names.update(await scope_targets.organization_names(target.organization_id))
    return build_usage(
        target.scope,
        await scope_targets.server_readings(
            call.actor, call.request.app[REGISTRY_KEY], target.server_ids
        ),
        names,
        include_artifacts=query.include_artifacts,
        include_warnings=query.include_warnings,
    )
