"""Audit show and exports: redacted payloads, aggregate and time filters, limits with
``truncated``, JSON lines and CSV streams, 404 across organizations, 400 without a window."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from coordinator import audit
from coordinator.db import models
from tests.harness import Coordinator
from tests.unit.coordinator.support import assert_error, problem_fields


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _seed(organization_id: str, aggregate_id: str, count: int) -> None:
    for index in range(count):
        await audit.record(
            actor=None,
            event_type="test-thing-changed",
            aggregate_type="thing",
            aggregate_id=aggregate_id,
            payload={"index": index, "password": f"hunter{index}"},
            organization_id=organization_id,
        )


async def _get(coordinator: Coordinator, token: str, path: str, **params: Any) -> Any:
    return await coordinator.call("GET", f"{path}?{urlencode(params)}", token=token)


async def test_show_and_export_are_redacted_filtered_and_bounded(
    coordinator: Coordinator, admin_token: str
) -> None:
    first = await models.AuditEvent.all().order_by("id").first()
    assert first is not None  # the bootstrap's event
    assert first.organization_id
    organization_id = first.organization_id
    start = datetime.now(UTC) - timedelta(seconds=5)
    await _seed(organization_id, "thing_a", 3)
    await _seed(organization_id, "thing_b", 2)

    status, shown, _ = await coordinator.call("GET", f"/audit-events/{first.id}", token=admin_token)
    assert status == 200, shown
    assert shown["schemaVersion"] == "audit-events.show/v1"
    assert shown["event"]["auditEventId"] == first.id

    status, page, _ = await _get(
        coordinator, admin_token, "/audit-events/export", aggregateId="thing_a", limit=2
    )
    assert status == 200, page
    assert page["schemaVersion"] == "audit-events.export/v1"
    assert (page["aggregateId"], page["itemCount"], page["truncated"]) == ("thing_a", 2, True)
    assert [i["payload"]["index"] for i in page["items"]] == [0, 1]
    assert page["items"][0]["payload"]["password"] == "****"
    assert page["items"][0]["redactedFields"] == ["password"]
    assert "hunter0" not in json.dumps(page)

    status, whole, _ = await _get(
        coordinator, admin_token, "/audit-events/export", aggregateId="thing_a"
    )
    assert (whole["itemCount"], whole["truncated"]) == (3, False)

    # The global export needs its window; events outside it are left out.
    error = assert_error(
        await _get(coordinator, admin_token, "/audit-events/export-global"),
        400,
        "invalid_request",
    )
    assert problem_fields(error) == {"from", "to"}
    error = assert_error(
        await _get(
            coordinator,
            admin_token,
            "/audit-events/export",
            **{"from": "2026-13-45T00:00:00Z"},
        ),
        400,
        "invalid_request",
    )
    assert problem_fields(error) == {"from"}
    window = {"from": _z(start), "to": _z(datetime.now(UTC) + timedelta(seconds=5))}
    status, everything, _ = await _get(
        coordinator,
        admin_token,
        "/audit-events/export-global",
        eventType="test-thing-changed",
        **window,
    )
    assert status == 200, everything
    assert everything["itemCount"] == 5
    assert {i["aggregateId"] for i in everything["items"]} == {"thing_a", "thing_b"}
    later = {
        "from": _z(datetime.now(UTC) + timedelta(hours=1)),
        "to": _z(datetime.now(UTC) + timedelta(hours=2)),
    }
    status, empty, _ = await _get(coordinator, admin_token, "/audit-events/export-global", **later)
    assert (empty["itemCount"], empty["items"]) == (0, [])

    # Streams: the same items, one JSON document a line, or CSV rows.
    status, lines, headers = await _get(
        coordinator,
        admin_token,
        "/audit-events/export-global",
        eventType="test-thing-changed",
        format="jsonl",
        limit=4,
        **window,
    )
    assert status == 200
    assert headers["Content-Type"] == "application/x-ndjson"
    parsed = [json.loads(line) for line in str(lines).splitlines()]
    assert [p["auditEventId"] for p in parsed] == [
        i["auditEventId"] for i in everything["items"][:4]
    ]
    status, text, _ = await _get(
        coordinator, admin_token, "/audit-events/export", aggregateId="thing_b", format="csv"
    )
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(str(text))))
    assert [json.loads(r["payload"])["index"] for r in rows] == [0, 1]
    assert all(json.loads(r["redactedFields"]) == ["password"] for r in rows)


async def test_another_organizations_event_is_missing(
    coordinator: Coordinator, admin_token: str
) -> None:
    other = await models.Organization.create(
        id="org_other", name="Other", slug="other", created_at=datetime.now(UTC)
    )
    await _seed(other.id, "thing_x", 1)
    row = await models.AuditEvent.get(aggregate_id="thing_x")
    assert_error(
        await coordinator.call("GET", f"/audit-events/{row.id}", token=admin_token),
        404,
        "not_found",
    )
    status, page, _ = await _get(
        coordinator, admin_token, "/audit-events/export", aggregateId="thing_x"
    )
    assert (status, page["itemCount"]) == (200, 0)
    own = await models.AuditEvent.exclude(organization_id="org_other").first()
    assert own is not None
    assert_error(
        await _get(coordinator, admin_token, f"/audit-events/{own.id}", aggregateId="thing_x"),
        404,
        "not_found",
    )
