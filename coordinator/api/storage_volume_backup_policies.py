"""Storage-volume backup-policy routes: parse, authorize, call
``coordinator.backups.volume_policies``, shape."""

from typing import Final

from coordinator.api import backup_policy_answers as answers
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

TAG: Final = "storage-volumes"
READ: Final = "storage-volumes:read"
WRITE: Final = "storage-volumes:write"


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
    return VolumeBackupPolicyList(items=answers.items_of(VolumeBackupPolicyItem, rows))


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
    request = answers.request_of(body, volume_policies.PolicyRequest)
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
    return VolumeBackupPolicyShow(policy=answers.item_of(VolumeBackupPolicyItem, row))
