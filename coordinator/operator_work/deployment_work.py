"""Deployments as operator work (kind ``deployment``): their phase and step come from the
timeline; cancel and retry are the deployment commands (``deployments:write`` needed too)."""

from datetime import datetime
from typing import Any, Final

from coordinator.auth import Principal
from coordinator.db import models
from coordinator.deployments import assess, commands, create_deployment, engine_of, planner, reads
from coordinator.deployments.creation import not_ready
from coordinator.lookup import get_deployment
from coordinator.operator_work.kinds import WorkFilters, WorkItem, WorkKind, WorkStatus
from shared.errors import Conflict

_STATUS: Final[dict[str, WorkStatus]] = {
    "created": "pending",
    "planning": "pending",
    "planned": "pending",
    "running": "running",
    "cancel-requested": "running",
    "succeeded": "succeeded",
    "rolled-back": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}
# What an agent-reported error code says about where the fault lies.
_CATEGORY_PREFIXES: Final = (
    ("plan-", "configuration"),
    ("agent-", "infrastructure"),
    ("health", "runtime"),
    ("image", "build"),
    ("build", "build"),
)


def _category(code: str | None) -> str | None:
    if not code:
        return None
    return next((c for p, c in _CATEGORY_PREFIXES if code.startswith(p)), "runtime")


def item(row: models.Deployment, last: models.DeploymentEvent | None) -> WorkItem:
    """A deployment in the ledger's shape (``last``: its newest timeline event)."""
    status = _STATUS.get(row.status, "unknown")
    actions = {
        "pending": ["cancel"],
        "running": ["cancel"],
        "failed": ["diagnostic", "retry"],
        "canceled": ["retry"],
    }.get(status, [])
    return WorkItem(
        id=row.id,
        kind="deployment",
        status=status,
        operation_key=f"deployment.{row.trigger_kind}",
        phase=last.phase if last else None,
        step=last.event_type if last else None,
        started_at=row.started_at or row.created_at,
        updated_at=last.emitted_at if last else row.created_at,
        finished_at=row.finished_at,
        error_code=row.error_code,
        error_category=_category(row.error_code),
        retriable=row.status == "failed",
        next_actions=actions,
        safe_details={"deploymentStatus": row.status, "triggerKind": row.trigger_kind},
        refs={
            "projectId": row.project_id,
            "resourceId": row.resource_id,
            "deploymentId": row.id,
            "serverId": row.server_id,
        },
    )


async def _last_events(ids: list[str]) -> dict[str, models.DeploymentEvent]:
    newest: dict[str, models.DeploymentEvent] = {}
    if not ids:
        return newest
    for event in await models.DeploymentEvent.filter(deployment_id__in=ids).order_by("sequence"):
        newest[event.deployment_id] = event
    return newest


class DeploymentWork:
    """The ledger's view of deployments."""

    kind: WorkKind = "deployment"
    prefix = "dep"

    async def listed(self, actor: Principal, filters: WorkFilters) -> list[WorkItem]:
        """Newest deployments the caller may see."""
        query = reads.visible(actor)
        if filters.resource_id:
            query = query.filter(resource_id=filters.resource_id)
        if filters.server_id:
            query = query.filter(server_id=filters.server_id)
        if filters.deployment_id:
            query = query.filter(id=filters.deployment_id)
        if filters.status:
            wanted = [k for k, v in _STATUS.items() if v == filters.status]
            query = query.filter(status__in=wanted)
        rows = await query.order_by("-created_at").limit(filters.limit)
        last = await _last_events([r.id for r in rows])
        return [item(r, last.get(r.id)) for r in rows]

    async def get(self, actor: Principal, work_id: str) -> WorkItem:
        """One deployment the caller may see, else 404."""
        row = await get_deployment(actor, work_id)
        return item(row, (await _last_events([row.id])).get(row.id))

    async def cancel(self, call: Any, work_id: str, reason: str | None) -> datetime:
        """``POST /deployments/{id}/cancel``'s rule: not yet finished."""
        call.actor.require("deployments:write")
        row = await get_deployment(call.actor, work_id)
        current = await commands.cancel(engine_of(call), call.actor, call.request_id, row)
        return current.finished_at or current.created_at

    async def retry(self, call: Any, work_id: str) -> str:
        """A new deployment with the current configuration (``triggerKind: retry``)."""
        call.actor.require("deployments:write")
        row = await get_deployment(call.actor, work_id)
        commands.check_retryable(row)
        target = await planner.load_target(
            call.actor, row.project_id, row.environment_id, row.resource_id, row.server_id
        )
        assessed = await assess(call, target)
        if not assessed.ready:
            raise not_ready([i.code for i in assessed.blocking])
        return await create_deployment(
            call, assessed, trigger_kind="retry", source_deployment_id=row.id
        )

    async def dead_letter(self, call: Any, work_id: str, reason: str) -> datetime:
        """Refused: a deployment's state is what its agent reports."""
        # Looked up first: another organization's deployment is a 404, not this 409.
        _ = await get_deployment(call.actor, work_id)
        raise Conflict(
            "deployments are not dead-lettered: cancel it, or let it fail and retry it",
            details={"kind": "deployment"},
        )

    async def mark_recovered(self, call: Any, work_id: str) -> datetime:
        """Refused: only a deployment that succeeded counts as succeeded."""
        _ = await get_deployment(call.actor, work_id)  # 404 beyond the caller's scope, as above
        raise Conflict(
            "a deployment cannot be marked recovered: retry it or roll back instead",
            details={"kind": "deployment"},
        )

    async def prune(
        self, actor: Principal, before: datetime, statuses: frozenset[str], dry_run: bool
    ) -> dict[str, int]:
        """Nothing: deployments are history, pruned by ``POST /deployments/prune``."""
        return {}
