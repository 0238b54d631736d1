"""Maintenance runs for the operator work ledger: a job wraps each run in ``recorded`` and the
ledger lists the row (kind ``runtime-maintenance``)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from coordinator.db.notification_models import MaintenanceRun
from coordinator.ids import new_id


class Run:
    """The run in progress: the job adds what it did to ``details``."""

    def __init__(self, row: MaintenanceRun) -> None:
        self.row = row
        self.details: dict[str, Any] = {}


@asynccontextmanager
async def recorded(
    operation_key: str, *, organization_id: str | None = None, server_id: str | None = None
) -> AsyncIterator[Run]:
    """Record a run: ``running`` now, then ``succeeded`` or ``failed`` (the error re-raised)."""
    now = datetime.now(UTC)
    row = await MaintenanceRun.create(
        id=new_id("mnt"),
        organization_id=organization_id,
        operation_key=operation_key,
        server_id=server_id,
        status="running",
        started_at=now,
        updated_at=now,
        details={},
    )
    run = Run(row)
    try:
        yield run
    except BaseException as exc:
        finished = datetime.now(UTC)
        await MaintenanceRun.filter(id=row.id).update(
            status="failed",
            updated_at=finished,
            finished_at=finished,
            error_code=type(exc).__name__[:64],
            error_message=str(exc)[:2000],
            details=run.details,
        )
        raise
    finished = datetime.now(UTC)
    await MaintenanceRun.filter(id=row.id).update(
        status="succeeded", updated_at=finished, finished_at=finished, details=run.details
    )


async def record_finished(
    operation_key: str,
    *,
    organization_id: str,
    server_id: str | None,
    started_at: datetime,
    details: dict[str, Any],
) -> str:
    """Record a run that already ended (an agent's answer to a command)."""
    now = datetime.now(UTC)
    row = await MaintenanceRun.create(
        id=new_id("mnt"),
        organization_id=organization_id,
        operation_key=operation_key,
        server_id=server_id,
        status="succeeded",
        started_at=started_at,
        updated_at=now,
        finished_at=now,
        details=details,
    )
    return row.id
