"""Recovery readiness of a deployment (``deployments.recovery-readiness/v1``): what can run next."""

from datetime import UTC, datetime

from coordinator.api.deployment_schemas import (
    RecommendedAction,
    RecoveryOperation,
    RecoveryReadinessResponse,
    RecoveryReason,
    RollbackCandidate,
    RollbackReadiness,
)
from coordinator.db import models
from coordinator.deployments import reads
from coordinator.deployments.store import ACTIVE


def _retry_reasons(row: models.Deployment) -> list[RecoveryReason]:
    if row.status in ("failed", "canceled"):
        return [
            RecoveryReason(
                code="attempt-terminal",
                category="allowed",
                phase="reconcile",
                related_deployment_id=row.id,
                retriable=True,
                recommendation=None,
            )
        ]
    return [
        RecoveryReason(
            code="attempt-not-terminal" if row.status in ACTIVE else "attempt-succeeded",
            category="blocked",
            phase="reconcile",
            related_deployment_id=row.id,
            retriable=False,
            recommendation="retry applies to failed or canceled deployments",
        )
    ]


async def recovery(row: models.Deployment) -> RecoveryReadinessResponse:
    """``deployments.recovery-readiness/v1`` of one deployment."""
    candidates = [
        c for c in await reads.rollback_candidates(row) if (c.artifact or {}).get("image")
    ]
    running = await reads.running(row.resource_id)
    in_flight = running is not None
    retry_reasons = _retry_reasons(row)
    retryable = retry_reasons[0].category == "allowed" and not in_flight
    busy = (
        [
            RecoveryReason(
                code="deployment-in-flight",
                category="blocked",
                phase="dispatch",
                related_deployment_id=running.id,
                retriable=True,
                recommendation="wait for the running deployment",
            )
        ]
        if running is not None
        else []
    )
    rollback_allowed = bool(candidates) and not in_flight
    rollback_reasons = busy or (
        []
        if candidates
        else [
            RecoveryReason(
                code="no-rollback-candidate",
                category="blocked",
                phase="rollback",
                related_deployment_id=None,
                retriable=False,
                recommendation="rollback needs an earlier succeeded deployment with an image",
            )
        ]
    )
    return RecoveryReadinessResponse(
        deployment_id=row.id,
        resource_id=row.resource_id,
        generated_at=datetime.now(UTC),
        state_version=row.event_count,
        recoverable=retryable or not in_flight or rollback_allowed,
        retryable=retryable,
        redeployable=not in_flight,
        rollback_ready=rollback_allowed,
        rollback_candidate_count=len(candidates),
        retry=RecoveryOperation(
            allowed=retryable,
            command_active=in_flight,
            reasons=retry_reasons + busy,
            target_operation="deployments.retry",
        ),
        redeploy=RecoveryOperation(
            allowed=not in_flight,
            command_active=in_flight,
            reasons=busy,
            target_operation="resources.redeploy",
        ),
        rollback=RollbackReadiness(
            allowed=rollback_allowed,
            command_active=in_flight,
            reasons=rollback_reasons,
            candidates=[
                RollbackCandidate(
                    deployment_id=c.id,
                    finished_at=c.finished_at,
                    status=c.status,
                    artifact_summary=str(
                        (c.artifact or {}).get("imageId") or (c.artifact or {}).get("image")
                    ),
                    environment_snapshot_id=str((c.environment_snapshot or {}).get("id") or "")
                    or None,
                    runtime_target_summary=f"server {c.server_id}",
                    rollback_ready=True,
                    source_summary=_source_summary(c),
                    reasons=[
                        RecoveryReason(
                            code="candidate-image-available",
                            category="allowed",
                            phase="rollback",
                            related_deployment_id=c.id,
                            retriable=False,
                            recommendation=None,
                        )
                    ],
                )
                for c in candidates
            ],
            recommended_candidate_id=candidates[0].id if candidates else None,
        ),
        recommended_actions=_actions(
            retry_reasons + busy if not retryable else [],
            busy,
            rollback_reasons if not rollback_allowed else [],
            in_flight,
        ),
    )


def _source_summary(row: models.Deployment) -> str | None:
    """``image nginx:1.27``: the kind and locator the deployment's runtime plan recorded."""
    source = (row.runtime_plan or {}).get("source")
    if not isinstance(source, dict) or not source.get("kind"):
        return None
    return " ".join(str(part) for part in (source["kind"], source.get("locator")) if part)


def _actions(
    retry_blocked: list[RecoveryReason],
    redeploy_blocked: list[RecoveryReason],
    rollback_blocked: list[RecoveryReason],
    in_flight: bool,
) -> list[RecommendedAction]:
    """Reading the deployment is always safe; each command says what blocks it, if anything."""
    actions = [
        RecommendedAction(
            kind="query",
            target_operation="deployments.show",
            label="Show the deployment",
            safe_by_default=True,
            blocked_reason_code=None,
            command_active=False,
        )
    ]
    for operation, label, blocked in (
        ("deployments.retry", "Retry the deployment", retry_blocked),
        ("resources.redeploy", "Redeploy the resource", redeploy_blocked),
        ("deployments.rollback", "Roll back to the recommended candidate", rollback_blocked),
    ):
        reason = next((r.code for r in blocked if r.category == "blocked"), None)
        actions.append(
            RecommendedAction(
                kind="command",
                target_operation=operation,
                label=label,
                # Commands start a new deployment: never taken without the user asking.
                safe_by_default=False,
                blocked_reason_code=reason,
                command_active=in_flight,
            )
        )
    return actions
