"""A task run's output as server-sent events, following it until the run ends.

SSE wire format of ``GET /scheduled-task-runs/{runId}/logs/stream`` (``text/event-stream``),
in the style of the deployment event stream:

* every output line is one frame::

      id: <sequence>
      event: task-run-log
      data: {"timestamp", "stream", "message", "sequence"}

  Lines are numbered from 1 per run; secrets are already masked when they are stored.
* resume with ``?cursor=<sequence>`` or the ``Last-Event-ID`` header: only later lines follow.
* ``untilFinished`` (default true): once the run is ``succeeded``, ``failed`` or ``skipped`` and
  every line was sent, one ``event: end`` frame (``data: {"runId", "status", "exitCode",
  "failureSummary", "failureCode"}``) closes the stream; with ``untilFinished=false`` the
  stream stays open.
* a ``: keepalive`` comment every 15 s keeps proxies from timing out an idle stream.

The database is the source of truth: the scheduler's notifier wakes readers when a run's output
or result arrives, and a reader also looks again every second (runs the scheduler settles on its
own - skipped, stopped before they started - do not notify).
"""

import asyncio
import json
from typing import Final

from aiohttp import web

from coordinator.db.task_models import ScheduledTaskRun, ScheduledTaskRunLog
from coordinator.deployments.stream import Notifier
from coordinator.scheduling import failures
from coordinator.scheduling.runs import ACTIVE

KEEPALIVE_SECONDS: Final = 15.0
RECHECK_SECONDS: Final = 1.0
_BATCH: Final = 200


def parse_cursor(value: str | None) -> int:
    """A cursor is a line's sequence; anything else means "from the first line"."""
    if value is None or not value.strip().isdigit():
        return 0
    return int(value.strip())


def _frame(event_id: str | None, name: str, data: str) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {data}\n\n".encode()


async def stream_run_logs(
    request: web.Request,
    run_id: str,
    *,
    after: int,
    until_finished: bool,
    notifier: Notifier,
) -> web.StreamResponse:
    """Write the run's lines after ``after`` as SSE, following until told to stop."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx would otherwise buffer the stream
        }
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    sent = after
    quiet_since = loop.time()
    while True:
        wake = notifier.current(run_id)
        # Read the status before the lines: a result stored after this read is seen next turn,
        # and the lines it follows are then read too.
        run = await ScheduledTaskRun.get_or_none(id=run_id)
        rows = (
            await ScheduledTaskRunLog.filter(run_id=run_id, sequence__gt=sent)
            .order_by("sequence")
            .limit(_BATCH)
        )
        for row in rows:
            data = json.dumps(
                {
                    "timestamp": row.timestamp.isoformat().replace("+00:00", "Z"),
                    "stream": row.stream,
                    "message": row.message,
                    "sequence": row.sequence,
                }
            )
            await response.write(_frame(str(row.sequence), "task-run-log", data))
            sent = row.sequence
        if rows:
            quiet_since = loop.time()
            continue
        finished = run is None or run.status not in ACTIVE
        if until_finished and finished:
            end = {
                "runId": run_id,
                "status": run.status if run is not None else "failed",
                "exitCode": run.exit_code if run is not None else None,
                "failureSummary": run.failure_summary if run is not None else None,
                "failureCode": failures.of_run(run) if run is not None else None,
            }
            await response.write(_frame(None, "end", json.dumps(end)))
            break
        try:
            async with asyncio.timeout(RECHECK_SECONDS):
                await wake.wait()
        except TimeoutError:
            if loop.time() - quiet_since >= KEEPALIVE_SECONDS:
                await response.write(b": keepalive\n\n")
                quiet_since = loop.time()
    await response.write_eof()
    return response
