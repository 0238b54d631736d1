"""Backup-policy routes: parse, authorize, call ``coordinator.backups.policies``, shape."""

from typing import Final

from coordinator.api.dependency_backup_schemas import (
    BackupPolicyItem,
    BackupPolicyList,
    BackupPolicyShow,
    ConfigureBackupPolicyRequest,
    ListBackupPoliciesQuery,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import IdResponse, NoQuery
from coordinator.backups import policies
from coordinator.db.backup_models import DependencyBackupPolicy

TAG: Final = "dependency-resources"
READ: Final = "dependency-resources:read"
WRITE: Final = "dependency-resources:write"


def policy_of(row: DependencyBackupPolicy) -> BackupPolicyItem:
    """The API item of a stored policy."""
    return BackupPolicyItem(
        id=row.id,
        version=str(row.version),
        dependency_resource_id=row.dependency_resource_id,
        retention_days=row.retention_days,
        schedule_interval_hours=row.schedule_interval_hours,
        provider_key=row.provider_key,
        retry_on_failure=row.retry_on_failure,
        enabled=row.enabled,
        last_run_at=row.last_run_at,
        next_run_at=row.next_run_at,
        updated_at=row.updated_at,
        keep_count=row.keep_count,
        last_backup_id=row.last_backup_id,
        backup_target_id=row.backup_target_id,
    )


@route(
    "GET",
    "/dependency-resources/backup-policies",
    summary="List backup policies with their last and next runs",
    tag=TAG,
    permission=READ,
    query=ListBackupPoliciesQuery,
    response=BackupPolicyList,
)
async def list_backup_policies(call: Call) -> BackupPolicyList:
    """Oldest first, at most 500."""
    query = call.query(ListBackupPoliciesQuery)
    rows = await policies.listed(
        call.actor, query.dependency_resource_id, query.enabled_only, query.due_at
    )
    return BackupPolicyList(items=[policy_of(row) for row in rows])


@route(
    "POST",
    "/dependency-resources/backup-policies",
    summary="Configure a database's backup policy (schedule, retention, keep-count, retry)",
    tag=TAG,
    permission=WRITE,
    body=ConfigureBackupPolicyRequest,
    response=IdResponse,
    events=("dependency-resource.backup-policy-configured",),
)
async def configure_backup_policy(call: Call) -> IdResponse:
    """Creates the database's policy, or replaces it (its ``version`` goes up)."""
    body = call.body(ConfigureBackupPolicyRequest)
    request = policies.PolicyRequest(
        dependency_resource_id=body.dependency_resource_id,
        schedule_interval_hours=body.schedule_interval_hours,
        retention_days=body.retention_days,
        keep_count=body.keep_count,
        retry_on_failure=body.retry_on_failure,
        enabled=body.enabled,
        backup_target_id=body.backup_target_id,
    )
    return IdResponse(id=await policies.configure(call.actor, call.request_id, request))


@route(
    "GET",
    "/dependency-resources/backup-policies/{policyId}",
    summary="Show one backup policy",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=BackupPolicyShow,
)
async def show_backup_policy(call: Call) -> BackupPolicyShow:
    """One policy of the caller's scope."""
    return BackupPolicyShow(policy=policy_of(await policies.get(call.actor, call.path["policyId"])))
