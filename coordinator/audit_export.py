"""Audit reads beyond the list: one event, and bounded exports (one aggregate or global).

Exports never mutate retention. They are bounded (``limit`` <= 500, ``truncated`` says more
matched) and filtered by time; a scoped token sees only events about what its scope reaches
(coordinator/audit_scope.py), exactly as the list does.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from coordinator.audit_scope import AuditVisibility
from coordinator.auth import Principal
from coordinator.db import models
from shared.errors import NotFound

_BATCH: Final = 500
_SCAN_ROWS: Final = 20_000


@dataclass(frozen=True)
class ExportFilters:
    """What an export selects."""

    aggregate_id: str | None
    event_type: str | None
    since: datetime | None
    until: datetime | None
    limit: int


def split_payload(row: models.AuditEvent) -> tuple[dict[str, Any], list[str]]:
    """The stored payload without its ``redactedFields`` marker, and the redacted fields."""
    payload = dict(row.payload or {})
    redacted = payload.pop("redactedFields", [])
    return payload, [str(f) for f in redacted] if isinstance(redacted, list) else []


async def show(actor: Principal, event_id: str, aggregate_id: str | None) -> models.AuditEvent:
    """One event the caller may read (``aggregate_id``, when given, must match), else 404."""
    row = await models.AuditEvent.get_or_none(id=event_id, organization_id=actor.organization_id)
    if (
        row is None
        or (aggregate_id is not None and row.aggregate_id != aggregate_id)
        or not await AuditVisibility(actor).visible(row)
    ):
        raise NotFound(f"audit event {event_id!r} not found")
    return row


async def rows(actor: Principal, filters: ExportFilters) -> AsyncIterator[models.AuditEvent]:
    """The matching events the caller may read, oldest first, at most ``limit + 1`` (the extra
    one only tells the caller the export is truncated)."""
    query = models.AuditEvent.filter(organization_id=actor.organization_id)
    if filters.aggregate_id:
        query = query.filter(aggregate_id=filters.aggregate_id)
    if filters.event_type:
        query = query.filter(event_type=filters.event_type)
    if filters.since:
        query = query.filter(occurred_at__gte=filters.since)
    if filters.until:
        query = query.filter(occurred_at__lt=filters.until)
    visibility = AuditVisibility(actor)
    after: str | None = None
    found = scanned = 0
    while found <= filters.limit and scanned < _SCAN_ROWS:
        batch_query = query.filter(id__gt=after) if after else query
        batch = await batch_query.order_by("id").limit(_BATCH)
        for row in batch:
            scanned += 1
            after = row.id
            if await visibility.visible(row):
                found += 1
                yield row
                if found > filters.limit:
                    return
        if len(batch) < _BATCH:
            return
