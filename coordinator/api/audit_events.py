"""Audit event routes: read the append-only trail of mutations."""

from coordinator import audit_trail
from coordinator.api.routing import Call, route
from coordinator.api.schemas import AuditEventItem, AuditEventList, AuditEventsQuery


@route(
    "GET",
    "/audit-events",
    summary="List audit events",
    tag="audit",
    permission="audit-events:read",
    query=AuditEventsQuery,
    response=AuditEventList,
)
async def list_events(call: Call) -> AuditEventList:
    """List events oldest first; filter by aggregate or type; cursor pagination. A scoped
    token sees only events about what its scope reaches (see coordinator/audit_scope.py)."""
    query = call.query(AuditEventsQuery)
    page = await audit_trail.page(
        call.actor,
        aggregate_id=query.aggregate_id,
        event_type=query.event_type,
        cursor=query.cursor,
        limit=query.limit,
    )
    items = [
        AuditEventItem(
            id=r.id,
            event_type=r.event_type,
            aggregate_type=r.aggregate_type,
            aggregate_id=r.aggregate_id,
            actor_kind=r.actor_kind,
            actor_id=r.actor_id,
            payload=r.payload,
            request_id=r.request_id,
            occurred_at=r.occurred_at,
        )
        for r in page.items
    ]
    return AuditEventList(items=items, next_cursor=page.next_cursor)
