"""Audit event show and exports: ``GET /audit-events/{auditEventId}``, ``/audit-events/export``
(one aggregate) and ``/audit-events/export-global`` (time window required); ``format=jsonl`` or
``format=csv`` streams the same items instead of one JSON document."""

import csv
import io
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import Field

from coordinator import audit_export
from coordinator.api import timestamps
from coordinator.api.routing import Call, route
from coordinator.api.schemas import ApiRequest
from coordinator.api.timestamps import UtcTimestamp
from coordinator.db import models
from shared.wire import WireModel

TAG = "audit"
# What format=jsonl and format=csv answer (documented next to the JSON answer).
STREAM_TYPES = "application/x-ndjson,text/csv"
_CSV_COLUMNS = (
    "auditEventId", "createdAt", "eventType", "aggregateType", "aggregateId", "actorKind",
    "actorId", "requestId", "payload", "redactedFields",
)  # fmt: skip


class ExportedEvent(WireModel):
    """An event with its redacted payload (``audit-events.show|export/v1`` items)."""

    audit_event_id: str
    aggregate_id: str | None
    aggregate_type: str
    event_type: str
    created_at: datetime
    actor_kind: str
    actor_id: str | None
    request_id: str | None
    payload: dict[str, Any]
    redacted_fields: list[str]


class ShowQuery(ApiRequest):
    """``aggregateId``, when given, must be the event's."""

    aggregate_id: str | None = Field(default=None, min_length=1, max_length=64)


class AuditEventShow(WireModel):
    """``audit-events.show/v1``."""

    schema_version: Literal["audit-events.show/v1"] = "audit-events.show/v1"
    event: ExportedEvent


class ExportQuery(ApiRequest):
    """Filters of ``/audit-events/export``."""

    aggregate_id: str | None = Field(default=None, min_length=1, max_length=64)
    event_type: str | None = Field(default=None, min_length=1, max_length=64)
    from_: UtcTimestamp | None = Field(default=None, alias="from")
    to: UtcTimestamp | None = None
    limit: int = Field(default=100, gt=0, le=500)
    format: Literal["json", "jsonl", "csv"] = "json"


class GlobalExportQuery(ExportQuery):
    """``/audit-events/export-global`` needs its time window."""

    from_: UtcTimestamp = Field(alias="from")
    to: UtcTimestamp


class ExportFiltersView(WireModel):
    """The filters an export applied."""

    aggregate_id: str | None = None
    event_type: str | None
    from_: str | None = Field(alias="from")
    to: str | None
    limit: int


class AuditExport(WireModel):
    """``audit-events.export/v1``."""

    schema_version: Literal["audit-events.export/v1"] = "audit-events.export/v1"
    aggregate_id: str | None
    filters: ExportFiltersView
    items: list[ExportedEvent]
    item_count: int
    truncated: bool
    generated_at: datetime


class AuditGlobalExport(WireModel):
    """``audit-events.export-global/v1``."""

    schema_version: Literal["audit-events.export-global/v1"] = "audit-events.export-global/v1"
    filters: ExportFiltersView
    items: list[ExportedEvent]
    item_count: int
    truncated: bool
    generated_at: datetime


def exported(row: models.AuditEvent) -> ExportedEvent:
    """The export view of a stored event."""
    payload, redacted = audit_export.split_payload(row)
    return ExportedEvent(
        audit_event_id=row.id,
        aggregate_id=row.aggregate_id,
        aggregate_type=row.aggregate_type,
        event_type=row.event_type,
        created_at=row.occurred_at,
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        request_id=row.request_id,
        payload=payload,
        redacted_fields=redacted,
    )


def _filters(query: ExportQuery) -> audit_export.ExportFilters:
    def parsed(value: str | None) -> datetime | None:
        return timestamps.parse(value) if value else None

    return audit_export.ExportFilters(
        aggregate_id=query.aggregate_id,
        event_type=query.event_type,
        since=parsed(query.from_),
        until=parsed(query.to),
        limit=query.limit,
    )


async def _collect(call: Call, query: ExportQuery) -> tuple[list[ExportedEvent], bool]:
    items = [exported(r) async for r in audit_export.rows(call.actor, _filters(query))]
    return items[: query.limit], len(items) > query.limit


async def _stream(call: Call, query: ExportQuery) -> web.StreamResponse:
    """JSON lines or CSV, written as rows are read (bounded by ``limit``)."""
    csv_out = query.format == "csv"
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8" if csv_out else "application/x-ndjson",
            "Content-Disposition": f"attachment; filename=audit-events.{query.format}",
        }
    )
    await response.prepare(call.request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if csv_out:
        writer.writerow(_CSV_COLUMNS)
    written = 0
    async for row in audit_export.rows(call.actor, _filters(query)):
        if written == query.limit:
            break  # the extra row only says "truncated"; a stream just ends
        item = exported(row).model_dump(mode="json", by_alias=True)
        if csv_out:
            writer.writerow(
                [
                    orjson.dumps(item[c]).decode()
                    if c in ("payload", "redactedFields")
                    else item[c]
                    for c in _CSV_COLUMNS
                ]
            )
            chunk = buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        else:
            chunk = orjson.dumps(item) + b"\n"
        await response.write(chunk)
        written += 1
    await response.write_eof()
    return response


def _filters_view(query: ExportQuery, *, with_aggregate: bool) -> ExportFiltersView:
    return ExportFiltersView(
        aggregate_id=query.aggregate_id if with_aggregate else None,
        event_type=query.event_type,
        from_=query.from_,
        to=query.to,
        limit=query.limit,
    )


@route(
    "GET",
    "/audit-events/export",
    summary="Export bounded redacted audit events (format=json|jsonl|csv), without pruning",
    tag=TAG,
    permission="audit-events:read",
    query=ExportQuery,
    response=AuditExport,
    raw_response=STREAM_TYPES,
)
async def export_events(call: Call) -> AuditExport | web.StreamResponse:
    """Oldest first within ``from``..``to``; ``truncated`` when more than ``limit`` matched."""
    query = call.query(ExportQuery)
    if query.format != "json":
        return await _stream(call, query)
    items, truncated = await _collect(call, query)
    return AuditExport(
        aggregate_id=query.aggregate_id,
        filters=_filters_view(query, with_aggregate=False),
        items=items,
        item_count=len(items),
        truncated=truncated,
        generated_at=datetime.now(UTC),
    )


@route(
    "GET",
    "/audit-events/export-global",
    summary="Export bounded redacted audit events across aggregates in a time window",
    tag=TAG,
    permission="audit-events:read",
    query=GlobalExportQuery,
    response=AuditGlobalExport,
    raw_response=STREAM_TYPES,
)
async def export_global(call: Call) -> AuditGlobalExport | web.StreamResponse:
    """``from`` and ``to`` are required; otherwise as ``/audit-events/export``."""
    query = call.query(GlobalExportQuery)
    if query.format != "json":
        return await _stream(call, query)
    items, truncated = await _collect(call, query)
    return AuditGlobalExport(
        filters=_filters_view(query, with_aggregate=True),
        items=items,
        item_count=len(items),
        truncated=truncated,
        generated_at=datetime.now(UTC),
    )


@route(
    "GET",
    "/audit-events/{auditEventId}",
    summary="Show one audit event with its redacted payload",
    tag=TAG,
    permission="audit-events:read",
    query=ShowQuery,
    response=AuditEventShow,
)
async def show_event(call: Call) -> AuditEventShow:
    """Another organization's event, or one outside a scoped token's reach, is a 404."""
    query = call.query(ShowQuery)
    row = await audit_export.show(call.actor, call.path["auditEventId"], query.aggregate_id)
    return AuditEventShow(event=exported(row))
