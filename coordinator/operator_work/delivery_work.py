"""Notification deliveries as operator work (kind ``system``, operation
``notification-delivery``): cancel, retry, dead-letter, mark recovered, prune."""

from datetime import UTC, datetime
from typing import Any, Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db.notification_models import NotificationDelivery
from coordinator.ids import new_id
from coordinator.notifications import NOTIFICATIONS_KEY
from coordinator.operator_work.kinds import WorkFilters, WorkItem, WorkKind, WorkStatus
from shared.errors import Conflict, NotFound

_DUE: Final = ("pending", "retry-scheduled")
_CATEGORY: Final = {
    "target-refused": "policy",
    "endpoint-error": "remote",
    "unreachable": "network",
    "timeout": "network",
    "smtp-refused": "remote",
    "subscription-deleted": "configuration",
    "secret-unreadable": "configuration",
}


def _next_actions(row: NotificationDelivery) -> list[str]:
    if row.status in _DUE:
        return ["cancel", "dead-letter"]
    if row.status in ("failed", "dead-lettered", "canceled"):
        return ["diagnostic", "retry", "mark-recovered"]
    return []


def item(row: NotificationDelivery) -> WorkItem:
    """A delivery in the ledger's shape."""
    status: WorkStatus = row.status  # type: ignore[assignment]
    return WorkItem(
        id=row.id,
        kind="system",
        status=status,
        operation_key="notification-delivery",
        phase="deliver",
        step=f"attempt {row.attempt_count}" if row.attempt_count else "queued",
        started_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        error_code=row.error_code,
        error_category=_CATEGORY.get(row.error_code or "") if row.error_code else None,
        retriable=row.status == "retry-scheduled"
        or (row.status == "failed" and row.error_code in ("unreachable", "timeout")),
        next_actions=_next_actions(row),
        safe_details={
            "subscriptionId": row.subscription_id,
            "eventType": row.event_type,
            "eventId": row.event_id,
            "attemptCount": str(row.attempt_count),
            **({"lastStatusCode": str(row.last_status_code)} if row.last_status_code else {}),
            **({"retryOfWorkId": row.retry_of_id} if row.retry_of_id else {}),
        },
    )


class DeliveryWork:
    """The ledger's view of the notification outbox."""

    kind: WorkKind = "system"
    prefix = "ndl"

    async def listed(self, actor: Principal, filters: WorkFilters) -> list[WorkItem]:
        """Newest deliveries of the caller's organization (they name no resource or server)."""
        if filters.resource_id or filters.server_id or filters.deployment_id:
            return []
        query = NotificationDelivery.filter(organization_id=actor.organization_id)
        if filters.status:
            query = query.filter(status=filters.status)
        rows = await query.order_by("-updated_at").limit(filters.limit)
        return [item(r) for r in rows]

    async def _row(self, actor: Principal, work_id: str) -> NotificationDelivery:
        row = await NotificationDelivery.get_or_none(
            id=work_id, organization_id=actor.organization_id
        )
        if row is None:
            raise NotFound(f"operator work {work_id!r} not found")
        return row

    async def get(self, actor: Principal, work_id: str) -> WorkItem:
        """One delivery, else 404."""
        return item(await self._row(actor, work_id))

    async def _move(
        self,
        call: Any,
        work_id: str,
        allowed: tuple[str, ...],
        status: str,
        action: str,
        reason: str | None,
    ) -> datetime:
        call.actor.require("notifications:write")
        row = await self._row(call.actor, work_id)
        now = datetime.now(UTC)
        async with in_transaction():
            moved = await NotificationDelivery.filter(id=row.id, status__in=allowed).update(
                status=status, updated_at=now, finished_at=now, next_attempt_at=None
            )
            if not moved:
                raise Conflict(
                    f"a {row.status} delivery cannot be {action}",
                    details={"status": row.status, "allowedFrom": list(allowed)},
                )
            await audit.record(
                actor=call.actor,
                event_type=f"operator-work.{action}",
                aggregate_type="operator-work",
                aggregate_id=row.id,
                payload={"kind": "system", "from": row.status, "to": status, "reason": reason},
                request_id=call.request_id,
            )
        return now

    async def cancel(self, call: Any, work_id: str, reason: str | None) -> datetime:
        """Stop a queued or retrying delivery (an attempt in flight does not overwrite it)."""
        return await self._move(call, work_id, _DUE, "canceled", "canceled", reason)

    async def dead_letter(self, call: Any, work_id: str, reason: str) -> datetime:
        """Give up on a delivery for good (kept in the log, never retried by itself)."""
        return await self._move(
            call, work_id, (*_DUE, "failed"), "dead-lettered", "dead-lettered", reason
        )

    async def mark_recovered(self, call: Any, work_id: str) -> datetime:
        """The operator told the receiver by other means: count it as succeeded."""
        return await self._move(
            call, work_id, ("failed", "dead-lettered", "canceled"), "succeeded", "recovered", None
        )

    async def retry(self, call: Any, work_id: str) -> str:
        """Queue the same event again as a new delivery (``retryOfWorkId``)."""
        call.actor.require("notifications:write")
        row = await self._row(call.actor, work_id)
        if row.status not in ("failed", "dead-lettered", "canceled"):
            raise Conflict(
                f"only failed, dead-lettered or canceled deliveries can be retried "
                f"(this one is {row.status})"
            )
        now = datetime.now(UTC)
        retry_id = new_id("ndl")
        async with in_transaction():
            _ = await NotificationDelivery.create(
                id=retry_id,
                organization_id=row.organization_id,
                subscription_id=row.subscription_id,
                event_id=f"retry:{retry_id}",
                event_type=row.event_type,
                payload={**row.payload, "deliveryId": retry_id},
                status="pending",
                attempt_count=0,
                next_attempt_at=now,
                attempts=[],
                retry_of_id=row.id,
                created_at=now,
                updated_at=now,
            )
            await audit.record(
                actor=call.actor,
                event_type="operator-work.retried",
                aggregate_type="operator-work",
                aggregate_id=row.id,
                payload={"kind": "system", "retryWorkId": retry_id},
                request_id=call.request_id,
            )
        running = call.request.app.get(NOTIFICATIONS_KEY)
        if running is not None:
            running.outbox.wake()
        return retry_id

    async def prune(
        self, actor: Principal, before: datetime, statuses: frozenset[str], dry_run: bool
    ) -> dict[str, int]:
        """Finished deliveries last updated before ``before`` with one of ``statuses``."""
        query = NotificationDelivery.filter(
            organization_id=actor.organization_id,
            status__in=sorted(statuses),
            updated_at__lt=before,
        )
        counts: dict[str, int] = {}
        for status in await query.values_list("status", flat=True):
            counts[str(status)] = counts.get(str(status), 0) + 1
        if not dry_run and counts:
            _ = await query.delete()
        return counts
