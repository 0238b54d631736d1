"""Audit event routes: read the append-only trail of mutations."""

from coordinator.api.routing import Call, route
from coordinator.api.schemas import AuditEventItem, AuditEventList, AuditEventsQuery
from coordinator.db import models


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
    """List events oldest first; filter by aggregate or type; cursor pagination."""
    query = call.query(AuditEventsQuery)
    rows = models.AuditEvent.filter(organization_id=call.actor.organization_id)
    if query.aggregate_id:
        rows = rows.filter(aggregate_id=query.aggregate_id)
    if query.event_type:
        rows = rows.filter(event_type=query.event_type)
    if query.cursor:
        rows = rows.filter(id__gt=query.cursor)
    found = await rows.order_by("id").limit(query.limit + 1)
    page = found[: query.limit]
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
        for r in page
    ]
    more = len(found) > query.limit
    return AuditEventList(items=items, next_cursor=page[-1].id if more and page else None)
