"""Backup-policy routes: parse, authorize, call ``coordinator.backups.policies``, shape."""

from typing import Final

from coordinator.api import backup_policy_answers as answers
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

TAG: Final = "dependency-resources"
READ: Final = "dependency-resources:read"
WRITE: Final = "dependency-resources:write"


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
    return BackupPolicyList(items=answers.items_of(BackupPolicyItem, rows))


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
    request = answers.request_of(body, policies.PolicyRequest)
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
    row = await policies.get(call.actor, call.path["policyId"])
    return BackupPolicyShow(policy=answers.item_of(BackupPolicyItem, row))
