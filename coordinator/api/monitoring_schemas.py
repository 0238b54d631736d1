"""Request schemas the monitoring routes (usage, thresholds) share."""

from pydantic import Field

from coordinator.api.schemas import ApiRequest
from coordinator.monitoring.scope_targets import scope_from_parts
from coordinator.monitoring.usage import MonitoringScope, MonitoringScopeKind


class ScopeQuery(ApiRequest):
    """The nested scope query (``scope.kind``, ``scope.serverId``...) Appaloft uses."""

    scope_kind: MonitoringScopeKind | None = Field(default=None, alias="scope.kind")
    scope_server_id: str | None = Field(default=None, alias="scope.serverId", max_length=40)
    scope_project_id: str | None = Field(default=None, alias="scope.projectId", max_length=40)
    scope_environment_id: str | None = Field(
        default=None, alias="scope.environmentId", max_length=40
    )
    scope_resource_id: str | None = Field(default=None, alias="scope.resourceId", max_length=40)
    scope_deployment_id: str | None = Field(default=None, alias="scope.deploymentId", max_length=40)

    def nested_scope(self) -> MonitoringScope | None:
        """The nested scope if any part of it was given."""
        ids = {
            "server_id": self.scope_server_id,
            "project_id": self.scope_project_id,
            "environment_id": self.scope_environment_id,
            "resource_id": self.scope_resource_id,
            "deployment_id": self.scope_deployment_id,
        }
        if self.scope_kind is None and not any(ids.values()):
            return None
        return scope_from_parts(self.scope_kind, ids)
