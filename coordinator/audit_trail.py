"""Reading the audit trail: a page of the events the caller may see, oldest first."""

from typing import Final

from coordinator.audit_scope import AuditVisibility
from coordinator.auth import Principal
from coordinator.db import models
from coordinator.paging import Page

_BATCH_ROWS: Final = 500
_SCAN_ROWS: Final = 5000


async def page(
    actor: Principal,
    *,
    aggregate_id: str | None,
    event_type: str | None,
    cursor: str | None,
    limit: int,
) -> Page[models.AuditEvent]:
    """Events filtered by aggregate or type. A scoped token sees only events about what its
    scope reaches (see coordinator/audit_scope.py)."""
    rows = models.AuditEvent.filter(organization_id=actor.organization_id)
    if aggregate_id:
        rows = rows.filter(aggregate_id=aggregate_id)
    if event_type:
        rows = rows.filter(event_type=event_type)
    # A scoped token's events are picked out of the trail batch by batch; a page scans at most
    # _SCAN_ROWS rows, so it may come back short with a cursor to go on from.
    visibility = AuditVisibility(actor)
    found: list[models.AuditEvent] = []
    more = False
    scanned = 0
    while not more:
        batch_query = rows.filter(id__gt=cursor) if cursor else rows
        batch = await batch_query.order_by("id").limit(_BATCH_ROWS)
        for row in batch:
            if len(found) == limit or scanned >= _SCAN_ROWS:
                more = True
                break
            scanned += 1
            cursor = row.id
            if await visibility.visible(row):
                found.append(row)
        if len(batch) < _BATCH_ROWS:
            break
    return Page(found, cursor if more else None)
