"""Deployment command routes: cancel, retry, rollback, redeploy and recovery readiness."""

from coordinator.api.deployment_recovery import recovery
from coordinator.api.deployment_schemas import (
    CancelRequest,
    CancelResponse,
    EmptyRequest,
    RecoveryReadinessResponse,
    RedeployRequest,
    RollbackRequest,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import IdResponse, NoQuery
from coordinator.db import models
from coordinator.deployments import (
    assess,
    commands,
    create_deployment,
    engine_of,
    planner,
    reads,
)
from coordinator.deployments.creation import not_ready
from coordinator.deployments.planner import Plan
from coordinator.lookup import get_deployment, get_resource
from shared.errors import Conflict, InvalidRequest

TAG = "deployments"


@route(
    "POST",
    "/deployments/{deploymentId}/cancel",
    summary="Cancel a deployment (confirm with its id)",
    tag=TAG,
    permission="deployments:write",
    body=CancelRequest,
    response=CancelResponse,
)
async def cancel(call: Call) -> CancelResponse:
    """Not yet taken by the agent: canceled at once; running: ``cancel-requested``."""
    body = call.body(CancelRequest)
    row = await get_deployment(call.actor, call.path["deploymentId"])
    if body.confirm != row.id:
        raise InvalidRequest(
            "confirm must repeat the deployment id",
            details={"problems": [{"field": "confirm", "message": "must equal the deployment id"}]},
        )
    current = await commands.cancel(engine_of(call), call.actor, call.request_id, row)
    return CancelResponse(
        id=row.id,
        status=current.status,  # type: ignore[arg-type]
        canceled_at=current.finished_at if current.status == "canceled" else None,
    )


async def _replan(call: Call, row: models.Deployment, server_id: str) -> Plan:
    target = await planner.load_target(
        call.actor, row.project_id, row.environment_id, row.resource_id, server_id
    )
    assessed = await assess(call, target)
    if not assessed.ready:
        raise not_ready([i.code for i in assessed.blocking])
    return assessed


@route(
    "POST",
    "/deployments/{deploymentId}/retry",
    summary="Retry a failed or canceled deployment with the current configuration",
    tag=TAG,
    permission="deployments:write",
    body=EmptyRequest,
    response=IdResponse,
    status=201,
)
async def retry(call: Call) -> IdResponse:
    """New deployment (``triggerKind: retry``, ``sourceDeploymentId``)."""
    row = await get_deployment(call.actor, call.path["deploymentId"])
    commands.check_retryable(row)
    assessed = await _replan(call, row, row.server_id)
    new = await create_deployment(call, assessed, trigger_kind="retry", source_deployment_id=row.id)
    return IdResponse(id=new)


@route(
    "POST",
    "/deployments/{deploymentId}/rollback",
    summary="Run a succeeded earlier deployment's artifact and configuration again",
    tag=TAG,
    permission="deployments:write",
    body=RollbackRequest,
    response=IdResponse,
    status=201,
)
async def rollback(call: Call) -> IdResponse:
    """New deployment reusing the candidate's image (no rebuild) and environment snapshot."""
    body = call.body(RollbackRequest)
    row = await get_deployment(call.actor, call.path["deploymentId"])
    candidate = await get_deployment(call.actor, body.rollback_candidate_deployment_id)
    commands.check_rollback_candidate(row, candidate)
    target = await planner.load_target(
        call.actor, row.project_id, row.environment_id, row.resource_id, row.server_id
    )
    assessed = await assess(call, target)
    blocking = commands.rollback_blockers(assessed)
    if blocking:
        raise not_ready(blocking)
    new = await create_deployment(
        call,
        assessed,
        trigger_kind="rollback",
        source_deployment_id=row.id,
        rollback_of=row,
        candidate=candidate,
    )
    return IdResponse(id=new)


@route(
    "GET",
    "/deployments/{deploymentId}/recovery-readiness",
    summary="Whether a deployment can be retried, redeployed or rolled back",
    tag=TAG,
    permission="deployments:read",
    query=NoQuery,
    response=RecoveryReadinessResponse,
)
async def recovery_readiness(call: Call) -> RecoveryReadinessResponse:
    """``deployments.recovery-readiness/v1``."""
    return await recovery(await get_deployment(call.actor, call.path["deploymentId"]))


@route(
    "POST",
    "/resources/{resourceId}/redeploy",
    summary="Deploy a resource again with its current configuration",
    tag=TAG,
    permission="deployments:write",
    body=RedeployRequest,
    response=IdResponse,
    status=201,
)
async def redeploy(call: Call) -> IdResponse:
    """On ``serverId`` or the server of the resource's latest deployment."""
    body = call.body(RedeployRequest)
    resource_id = call.path["resourceId"]
    latest = await reads.latest_visible(call.actor, resource_id)
    if latest is None:
        # The token's scope applies, not only the organization: a resource the caller may not
        # see is a 404, never a 409 that confirms it exists.
        _ = await get_resource(call.actor, resource_id)
        raise Conflict("the resource has never been deployed; create a deployment first")
    assessed = await _replan(call, latest, body.server_id or latest.server_id)
    new = await create_deployment(
        call, assessed, trigger_kind="redeploy", source_deployment_id=latest.id
    )
    return IdResponse(id=new)
