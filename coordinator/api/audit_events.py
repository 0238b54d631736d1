"""Audit event routes: read the append-only trail of mutations."""

from typing import Final

from coordinator.api.routing import Call, route
from coordinator.api.schemas import AuditEventItem, AuditEventList, AuditEventsQuery
from coordinator.audit_scope import AuditVisibility
from coordinator.db import models

_BATCH_ROWS: Final = 500
_SCAN_ROWS: Final = 5000


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
    rows = models.AuditEvent.filter(organization_id=call.actor.organization_id)
    if query.aggregate_id:
        rows = rows.filter(aggregate_id=query.aggregate_id)
    if query.event_type:
        rows = rows.filter(event_type=query.event_type)
    # A scoped token's events are picked out of the trail batch by batch; a page scans at most
    # _SCAN_ROWS rows, so it may come back short with a cursor to go on from.
    visibility = AuditVisibility(call.actor)
    page: list[models.AuditEvent] = []
    cursor = query.cursor
    more = False
    scanned = 0
    while not more:
        batch_query = rows.filter(id__gt=cursor) if cursor else rows
        batch = await batch_query.order_by("id").limit(_BATCH_ROWS)
        for row in batch:
            if len(page) == query.limit or scanned >= _SCAN_ROWS:
                more = True
                break
            scanned += 1
            cursor = row.id
            if await visibility.visible(row):
                page.append(row)
        if len(batch) < _BATCH_ROWS:
            break
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
    return AuditEventList(items=items, next_cursor=cursor if more else None)
