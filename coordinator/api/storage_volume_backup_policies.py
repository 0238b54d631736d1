"""Storage-volume backup-policy routes: parse, authorize, call
``coordinator.backups.volume_policies``, shape."""

from typing import Final

from coordinator.api.routing import Call, route
from coordinator.api.schemas import IdResponse, NoQuery
from coordinator.api.storage_volume_policy_schemas import (
    ConfigureVolumeBackupPolicyRequest,
    ListVolumeBackupPoliciesQuery,
    VolumeBackupPolicyItem,
    VolumeBackupPolicyList,
    VolumeBackupPolicyShow,
)
from coordinator.backups import volume_policies
from coordinator.db.volume_policy_models import StorageVolumeBackupPolicy

TAG: Final = "storage-volumes"
READ: Final = "storage-volumes:read"
WRITE: Final = "storage-volumes:write"


def policy_of(row: StorageVolumeBackupPolicy) -> VolumeBackupPolicyItem:
    """The API item of a stored volume policy."""
    return VolumeBackupPolicyItem(
        id=row.id,
        version=str(row.version),
        storage_volume_id=row.storage_volume_id,
        project_id=row.project_id,
        environment_id=row.environment_id,
        retention_days=row.retention_days,
        schedule_interval_hours=row.schedule_interval_hours,
        retry_on_failure=row.retry_on_failure,
        enabled=row.enabled,
        stop_resource=row.stop_resource,
        last_run_at=row.last_run_at,
        next_run_at=row.next_run_at,
        updated_at=row.updated_at,
        keep_count=row.keep_count,
        last_backup_id=row.last_backup_id,
        backup_target_id=row.backup_target_id,
    )


@route(
    "GET",
    "/storage-volumes/backup-policies",
    summary="List volume backup policies with their last and next runs",
    tag=TAG,
    permission=READ,
    query=ListVolumeBackupPoliciesQuery,
    response=VolumeBackupPolicyList,
)
async def list_volume_backup_policies(call: Call) -> VolumeBackupPolicyList:
    """Oldest first, at most 500."""
    query = call.query(ListVolumeBackupPoliciesQuery)
    rows = await volume_policies.listed(
        call.actor, query.storage_volume_id, query.enabled_only, query.due_at
    )
    return VolumeBackupPolicyList(items=[policy_of(row) for row in rows])


@route(
    "POST",
    "/storage-volumes/backup-policies",
    summary="Configure a named volume's backup policy (schedule, retention, keep-count, retry)",
    tag=TAG,
    permission=WRITE,
    body=ConfigureVolumeBackupPolicyRequest,
    response=IdResponse,
    events=("storage-volume.backup-policy-configured",),
)
async def configure_volume_backup_policy(call: Call) -> IdResponse:
    """Creates the volume's policy, or replaces it (its ``version`` goes up)."""
    body = call.body(ConfigureVolumeBackupPolicyRequest)
    request = volume_policies.PolicyRequest(
        storage_volume_id=body.storage_volume_id,
        schedule_interval_hours=body.schedule_interval_hours,
        retention_days=body.retention_days,
        keep_count=body.keep_count,
        retry_on_failure=body.retry_on_failure,
        enabled=body.enabled,
        stop_resource=body.stop_resource,
        backup_target_id=body.backup_target_id,
    )
    return IdResponse(id=await volume_policies.configure(call.actor, call.request_id, request))


@route(
    "GET",
    "/storage-volumes/backup-policies/{policyId}",
    summary="Show one volume backup policy",
    tag=TAG,
    permission=READ,
    query=NoQuery,
    response=VolumeBackupPolicyShow,
)
async def show_volume_backup_policy(call: Call) -> VolumeBackupPolicyShow:
    """One volume policy of the caller's scope."""
    row = await volume_policies.get(call.actor, call.path["policyId"])
    return VolumeBackupPolicyShow(policy=policy_of(row))
