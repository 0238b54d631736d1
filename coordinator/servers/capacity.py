"""Server capacity prune: which deployments a prune must keep, and the audit of a real prune."""

from datetime import UTC, datetime
from typing import Any, Final

from tortoise.transactions import in_transaction

from coordinator import audit, work_runs
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.deployments.store import ACTIVE

# Per resource, this many newest succeeded deployments stay restorable (rollback candidates).
ROLLBACK_CANDIDATES_KEPT: Final = 20


async def protected_deployments(server_id: str) -> list[str]:
    """Deployments a prune must keep: rollback candidates of the server's resources, and any
    deployment still in flight there (its container or workspace may be about to be used)."""
    protected: set[str] = set()
    in_flight = await models.Deployment.filter(
        server_id=server_id, status__in=sorted(ACTIVE)
    ).values_list("id", flat=True)
    protected.update(str(i) for i in in_flight)
    resource_ids = (
        await models.Deployment.filter(server_id=server_id)
        .distinct()
        .values_list("resource_id", flat=True)
    )
    for resource_id in sorted({str(r) for r in resource_ids}):
        # Same rule as recovery readiness: the newest succeeded deployments are the candidates.
        candidates = (
            await models.Deployment.filter(resource_id=str(resource_id), status="succeeded")
            .order_by("-finished_at", "-id")
            .limit(ROLLBACK_CANDIDATES_KEPT)
            .values_list("id", flat=True)
        )
        protected.update(str(i) for i in candidates)
    return sorted(protected)


async def record_prune(
    actor: Principal, request_id: str, server_id: str, payload: dict[str, Any]
) -> None:
    """Audit a real prune (the agent already acted: the row records what it did)."""
    async with in_transaction():
        await audit.record(
            actor=actor,
            event_type="server.capacity-pruned",
            aggregate_type="server",
            aggregate_id=server_id,
            payload=payload,
            request_id=request_id,
        )
        # The operator work ledger lists it as a finished maintenance run.
        _ = await work_runs.record_finished(
            "capacity-prune",
            organization_id=actor.organization_id,
            server_id=server_id,
            started_at=datetime.now(UTC),
            details={k: str(v) for k, v in payload.items() if isinstance(v, str | int | bool)},
        )
