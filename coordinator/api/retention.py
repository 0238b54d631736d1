"""Retention routes: ``/retention-defaults`` (list, show, configure) and the deployment history
prunes ``POST /deployments/prune`` and ``/deployments/logs/prune`` (dry run by default)."""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from coordinator import audit_scope
from coordinator.api.routing import Call, route
from coordinator.api.schemas import ApiRequest, IdResponse, NoQuery
from coordinator.api.timestamps import UtcTimestamp
from coordinator.db.notification_models import RetentionDefault
from coordinator.retention import defaults, pruning
from shared.errors import Forbidden, InvalidRequest
from shared.wire import WireModel

TAG = "retention"
Category = Literal[
    "audit-rows",
    "deployment-logs",
    "domain-event-streams",
    "process-attempts",
    "provider-job-logs",
    "resource-runtime-log-archives",
    "runtime-monitoring-samples",
    # Berth extension: output lines of finished scheduled-task runs.
    "scheduled-task-run-logs",
]


class RetentionQuery(ApiRequest):
    """Filters of ``GET /retention-defaults``."""

    scope: Literal["organization", "system"] | None = None
    organization_id: str | None = Field(default=None, max_length=40)
    category: Category | None = None
    enabled_only: bool = False


class ConfigureRetentionRequest(ApiRequest):
    """``POST /retention-defaults``: create or replace the organization's policy."""

    category: Category
    retention_days: int = Field(ge=1, le=36500)
    scope: Literal["organization", "system"] = "organization"
    organization_id: str | None = Field(default=None, max_length=40)
    dry_run_scheduling_enabled: bool = True
    destructive_scheduling_enabled: bool = False
    enabled: bool = True


class RetentionPolicyView(WireModel):
    """``retention-defaults.policy/v1`` (``lastRun``: the scheduled prune's last pass)."""

    schema_version: Literal["retention-defaults.policy/v1"] = "retention-defaults.policy/v1"
    id: str
    scope: Literal["organization", "system"]
    organization_id: str | None
    category: Category
    retention_days: int
    dry_run_scheduling_enabled: bool
    destructive_scheduling_enabled: bool
    enabled: bool
    updated_at: datetime
    updated_by_actor_id: str | None
    updated_by_actor_kind: str
    last_run: dict[str, Any] | None


class RetentionList(WireModel):
    """``retention-defaults.list/v1``."""

    schema_version: Literal["retention-defaults.list/v1"] = "retention-defaults.list/v1"
    items: list[RetentionPolicyView]


class RetentionShow(WireModel):
    """``retention-defaults.show/v1``."""

    schema_version: Literal["retention-defaults.show/v1"] = "retention-defaults.show/v1"
    policy: RetentionPolicyView


class HistoryPruneRequest(ApiRequest):
    """What to prune; ``dryRun`` (default true) only reports."""

    before: UtcTimestamp
    deployment_id: str | None = Field(default=None, max_length=40)
    resource_id: str | None = Field(default=None, max_length=40)
    server_id: str | None = Field(default=None, max_length=40)
    dry_run: bool = True


class DeploymentsPruneReport(WireModel):
    """``deployments.prune/v1``."""

    schema_version: Literal["deployments.prune/v1"] = "deployments.prune/v1"
    before: str
    deployment_id: str | None
    resource_id: str | None
    server_id: str | None
    dry_run: bool
    matched_count: int
    pruned_count: int
    guarded_count: int
    affected_deployment_ids: list[str]
    guarded_deployment_ids: list[str]
    pruned_at: datetime


class LogsPruneReport(WireModel):
    """``deployments.logs.prune/v1`` (plus the guarded deployments whose lines stay)."""

    schema_version: Literal["deployments.logs.prune/v1"] = "deployments.logs.prune/v1"
    before: str
    deployment_id: str | None
    resource_id: str | None
    server_id: str | None
    dry_run: bool
    matched_count: int
    pruned_count: int
    affected_deployment_count: int
    affected_deployment_ids: list[str]
    guarded_deployment_ids: list[str]
    pruned_at: datetime


def policy_view(row: RetentionDefault) -> RetentionPolicyView:
    """The wire view of a stored policy."""
    return RetentionPolicyView(
        id=row.id,
        scope=row.scope,  # type: ignore[arg-type]
        organization_id=row.organization_id,
        category=row.category,  # type: ignore[arg-type]
        retention_days=row.retention_days,
        dry_run_scheduling_enabled=row.dry_run_scheduling_enabled,
        destructive_scheduling_enabled=row.destructive_scheduling_enabled,
        enabled=row.enabled,
        updated_at=row.updated_at,
        updated_by_actor_id=row.updated_by_actor_id,
        updated_by_actor_kind=row.updated_by_actor_kind,
        last_run=row.last_run,
    )


def _organization_wide(call: Call) -> None:
    if audit_scope.is_scoped(call.actor):
        raise Forbidden(
            "retention applies to the whole organization; use a token without project, "
            "environment, resource or server limits"
        )


@route(
    "GET",
    "/retention-defaults",
    summary="List retention defaults per history category",
    tag=TAG,
    permission="retention-defaults:read",
    query=RetentionQuery,
    response=RetentionList,
)
async def list_defaults(call: Call) -> RetentionList:
    """The caller's organization's policies (there are no stored system-scope policies)."""
    query = call.query(RetentionQuery)
    if query.scope == "system" or query.organization_id not in (None, call.actor.organization_id):
        return RetentionList(items=[])
    rows = await defaults.listed(
        call.actor, category=query.category, enabled_only=query.enabled_only
    )
    return RetentionList(items=[policy_view(r) for r in rows])


@route(
    "GET",
    "/retention-defaults/{category}",
    summary="Show the retention default of one category",
    tag=TAG,
    permission="retention-defaults:read",
    query=NoQuery,
    response=RetentionShow,
)
async def show_default(call: Call) -> RetentionShow:
    """404 when the organization has none for the category."""
    row = await defaults.show(call.actor, call.path["category"])
    return RetentionShow(policy=policy_view(row))


@route(
    "POST",
    "/retention-defaults",
    summary="Configure how long a history category is kept and how the scheduled prune acts",
    tag=TAG,
    permission="retention-defaults:write",
    body=ConfigureRetentionRequest,
    response=IdResponse,
)
async def configure_default(call: Call) -> IdResponse:
    """Organization scope only; categories Berth keeps no history of are a 400."""
    body = call.body(ConfigureRetentionRequest)
    _organization_wide(call)
    if body.scope != "organization" or body.organization_id not in (
        None,
        call.actor.organization_id,
    ):
        raise InvalidRequest(
            "only the caller's organization's defaults can be set (scope organization)"
        )
    row = await defaults.save(
        call.actor,
        call.request_id,
        body.category,
        {
            "retention_days": body.retention_days,
            "dry_run_scheduling_enabled": body.dry_run_scheduling_enabled,
            "destructive_scheduling_enabled": body.destructive_scheduling_enabled,
            "enabled": body.enabled,
        },
    )
    return IdResponse(id=row.id)


@route(
    "POST",
    "/deployments/prune",
    summary="Dry-run or prune old finished deployments, never current ones or rollback candidates",
    tag="deployments",
    permission="deployments:write",
    body=HistoryPruneRequest,
    response=DeploymentsPruneReport,
)
async def prune_deployments(call: Call) -> DeploymentsPruneReport:
    """A dry run reports exactly what the same real run removes."""
    body = call.body(HistoryPruneRequest)
    _organization_wide(call)
    selection, pruned = await pruning.deployments(call.actor, call.request_id, body)
    return DeploymentsPruneReport(
        before=body.before,
        deployment_id=body.deployment_id,
        resource_id=body.resource_id,
        server_id=body.server_id,
        dry_run=body.dry_run,
        matched_count=len(selection.removable),
        pruned_count=pruned,
        guarded_count=len(selection.guarded),
        affected_deployment_ids=selection.removable,
        guarded_deployment_ids=selection.guarded,
        pruned_at=datetime.now(UTC),
    )


@route(
    "POST",
    "/deployments/logs/prune",
    summary="Dry-run or prune old deployments' log lines (the deployments stay)",
    tag="deployments",
    permission="deployments:write",
    body=HistoryPruneRequest,
    response=LogsPruneReport,
)
async def prune_deployment_logs(call: Call) -> LogsPruneReport:
    """Lines of guarded deployments (current, in flight, rollback candidates) stay."""
    body = call.body(HistoryPruneRequest)
    _organization_wide(call)
    selection, counts, pruned = await pruning.logs(call.actor, call.request_id, body)
    return LogsPruneReport(
        before=body.before,
        deployment_id=body.deployment_id,
        resource_id=body.resource_id,
        server_id=body.server_id,
        dry_run=body.dry_run,
        matched_count=sum(counts.values()),
        pruned_count=pruned,
        affected_deployment_count=len(counts),
        affected_deployment_ids=sorted(counts),
        guarded_deployment_ids=selection.guarded,
        pruned_at=datetime.now(UTC),
    )
