"""Deployment command rules: cancel (audited), and what a retry or a rollback needs first."""

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.deployments.engine import DeploymentEngine
from coordinator.deployments.planner import Plan
from coordinator.deployments.store import TERMINAL
from shared.errors import Conflict

# Reasons that still block a rollback: it reuses an artifact, so source problems do not matter.
ROLLBACK_BLOCKERS = frozenset(
    {
        "project-archived",
        "environment-archived",
        "environment-locked",
        "resource-archived",
        "resource-environment-mismatch",
        "server-inactive",
    }
)


async def cancel(
    engine: DeploymentEngine, actor: Principal, request_id: str, row: models.Deployment
) -> models.Deployment:
    """Cancel a deployment not yet finished (audited); its row as it stands afterwards."""
    if row.status in TERMINAL:
        raise Conflict(f"the deployment is already {row.status}", details={"status": row.status})
    status = await engine.cancel(row)
    await audit.record(
        actor=actor,
        event_type="deployment.cancel-requested",
        aggregate_type="deployment",
        aggregate_id=row.id,
        payload={"status": status},
        request_id=request_id,
    )
    return await models.Deployment.get(id=row.id)


def check_retryable(row: models.Deployment) -> None:
    """Only a failed or canceled deployment can be retried (409 otherwise)."""
    if row.status not in ("failed", "canceled"):
        raise Conflict(
            f"only failed or canceled deployments can be retried (this one is {row.status})"
        )


def check_rollback_candidate(row: models.Deployment, candidate: models.Deployment) -> None:
    """A rollback candidate is a succeeded deployment of the same resource with an image."""
    if candidate.resource_id != row.resource_id or candidate.status != "succeeded":
        raise Conflict(
            "the rollback candidate must be a succeeded deployment of the same resource",
            details={"rollbackCandidateDeploymentId": candidate.id, "status": candidate.status},
        )
    if not (candidate.artifact or {}).get("image"):
        raise Conflict("the rollback candidate has no recorded artifact")


def rollback_blockers(plan: Plan) -> list[str]:
    """The plan's blocking reasons that also block a rollback."""
    return [i.code for i in plan.blocking if i.code in ROLLBACK_BLOCKERS]
