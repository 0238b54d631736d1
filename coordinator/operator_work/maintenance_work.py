"""Maintenance runs as operator work (kind ``runtime-maintenance``): source-archive pruning
(coordinator-wide, shown to ``*`` tokens) and capacity prunes (per organization and server).

A run is over when it is listed (they are short), so it cannot be canceled, and it is not
retried from here (archive pruning runs on its schedule, a capacity prune is asked for again);
a failed run can be dead-lettered or marked recovered once the operator has dealt with it.
"""

from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db.notification_models import MaintenanceRun
from coordinator.operator_work.kinds import WorkFilters, WorkItem, WorkKind, WorkStatus
from coordinator.permissions import ALL_PERMISSIONS
from shared.errors import Conflict, NotFound


def _visible(actor: Principal) -> Q:
    if ALL_PERMISSIONS in actor.permissions:
        return Q(organization_id=actor.organization_id) | Q(organization_id__isnull=True)
    return Q(organization_id=actor.organization_id)


def item(row: MaintenanceRun) -> WorkItem:
    """A run in the ledger's shape."""
    status: WorkStatus = row.status  # type: ignore[assignment]
    return WorkItem(
        id=row.id,
        kind="runtime-maintenance",
        status=status,
        operation_key=row.operation_key,
        phase="prune",
        step=row.operation_key,
        started_at=row.started_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        error_code=row.error_code,
        error_category="runtime" if row.error_code else None,
        retriable=False,
        next_actions=["diagnostic", "dead-letter", "mark-recovered"] if status == "failed" else [],
        safe_details={k: str(v) for k, v in row.details.items()},
        refs={"serverId": row.server_id},
    )


class MaintenanceWork:
    """The ledger's view of maintenance runs."""

    kind: WorkKind = "runtime-maintenance"
    prefix = "mnt"

    async def listed(self, actor: Principal, filters: WorkFilters) -> list[WorkItem]:
        """Newest runs the caller may see."""
        if filters.resource_id or filters.deployment_id:
            return []
        query = MaintenanceRun.filter(_visible(actor))
        if filters.server_id:
            query = query.filter(server_id=filters.server_id)
        if filters.status:
            query = query.filter(status=filters.status)
        return [item(r) for r in await query.order_by("-updated_at").limit(filters.limit)]

    async def _row(self, actor: Principal, work_id: str) -> MaintenanceRun:
        row = await MaintenanceRun.filter(_visible(actor), id=work_id).first()
        if row is None:
            raise NotFound(f"operator work {work_id!r} not found")
        return row

    async def get(self, actor: Principal, work_id: str) -> WorkItem:
        """One run, else 404."""
        return item(await self._row(actor, work_id))

    async def cancel(self, call: Any, work_id: str, reason: str | None) -> datetime:
        """Refused: a run is over by the time it is listed."""
        _ = await self._row(call.actor, work_id)
        raise Conflict("a maintenance run cannot be canceled", details={"kind": self.kind})

    async def retry(self, call: Any, work_id: str) -> str:
        """Refused: archive pruning runs on its schedule; ask for a capacity prune again."""
        _ = await self._row(call.actor, work_id)
        raise Conflict(
            "maintenance runs are not retried from the ledger: archive pruning runs on its "
            "schedule, and a capacity prune is asked for again (POST /servers/{id}/capacity/prune)",
            details={"kind": self.kind},
        )

    async def _settle(
        self, call: Any, work_id: str, status: str, action: str, reason: str | None
    ) -> datetime:
        call.actor.require("capacity:prune")
        row = await self._row(call.actor, work_id)
        now = datetime.now(UTC)
        async with in_transaction():
            moved = await MaintenanceRun.filter(id=row.id, status="failed").update(
                status=status, updated_at=now
            )
            if not moved:
                raise Conflict(
                    f"only a failed run can be {action} (this one is {row.status})",
                    details={"status": row.status},
                )
            await audit.record(
                actor=call.actor,
                event_type=f"operator-work.{action}",
                aggregate_type="operator-work",
                aggregate_id=row.id,
                payload={"kind": self.kind, "from": row.status, "to": status, "reason": reason},
                request_id=call.request_id,
            )
        return now

    async def dead_letter(self, call: Any, work_id: str, reason: str) -> datetime:
        """Acknowledge a failed run as given up on."""
        return await self._settle(call, work_id, "dead-lettered", "dead-lettered", reason)

    async def mark_recovered(self, call: Any, work_id: str) -> datetime:
        """Acknowledge a failed run as dealt with."""
        return await self._settle(call, work_id, "succeeded", "recovered", None)

    async def prune(
        self, actor: Principal, before: datetime, statuses: frozenset[str], dry_run: bool
    ) -> dict[str, int]:
        """Finished runs the caller may see, last updated before ``before``."""
        query = MaintenanceRun.filter(
            _visible(actor), status__in=sorted(statuses), updated_at__lt=before
        )
        counts: dict[str, int] = {}
        for status in await query.values_list("status", flat=True):
            counts[str(status)] = counts.get(str(status), 0) + 1
        if not dry_run and counts:
            _ = await query.delete()
        return counts
