"""Deployment event streaming: the in-process wake-up notifier and the server-sent-events writer.

SSE wire format of ``GET /deployments/{id}/events/stream`` (``text/event-stream``):

* every timeline event is one frame::

      id: <cursor>
      event: deployment-event
      data: <deployments.stream-events/v1 envelope as one JSON line>

  The cursor is the event's ``sequence`` as text; events are numbered from 1 without gaps.
* resume with ``?cursor=<cursor>`` or the ``Last-Event-ID`` header (what browsers send on
  reconnect): only events after that cursor are sent, so nothing is lost or repeated.
* ``untilTerminal=true``: once the deployment is terminal and every event was sent, one
  ``event: end`` frame (``data: {"deploymentId", "status"}``) closes the stream.
* a ``: keepalive`` comment line every 15 s keeps proxies from timing out an idle stream.

The database is the source of truth; the notifier only says "look again now".
"""

import asyncio
import json
from collections.abc import Callable
from typing import Final

from aiohttp import web

from coordinator.db import models
from shared.wire import WireModel, dump_json

KEEPALIVE_SECONDS: Final = 15.0
STREAM_SCHEMA: Final = "deployments.stream-events/v1"
_BATCH: Final = 200


class Notifier:
    """One ``asyncio.Event`` generation per deployment: ``notify`` sets it and starts a new one.

    A reader takes ``current(id)`` BEFORE reading the database, then waits on it: a write that
    lands between the read and the wait has already set that event, so no wake-up is missed.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def current(self, deployment_id: str) -> asyncio.Event:
        """The event the next ``notify(deployment_id)`` will set."""
        event = self._events.get(deployment_id)
        if event is None:
            event = self._events[deployment_id] = asyncio.Event()
        return event

    def notify(self, deployment_id: str) -> None:
        """Wake every reader of ``deployment_id``."""
        event = self._events.pop(deployment_id, None)
        if event is not None:
            event.set()


def parse_cursor(value: str | None) -> int:
    """A cursor is an event sequence; anything else means "from the beginning"."""
    if value is None or not value.strip().isdigit():
        return 0
    return int(value.strip())


def _frame(event_id: str | None, name: str, data: str) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {name}")
    lines.append(f"data: {data}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


async def stream_events(
    request: web.Request,
    deployment_id: str,
    *,
    after: int,
    until_terminal: bool,
    notifier: Notifier,
    envelope: Callable[[models.DeploymentEvent], WireModel],
    terminal: frozenset[str],
) -> web.StreamResponse:
    """Write the deployment's events after ``after`` as SSE, following until told to stop."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx would otherwise buffer the stream
        }
    )
    await response.prepare(request)
    sent = after
    while True:
        wake = notifier.current(deployment_id)
        status = await models.Deployment.filter(id=deployment_id).values_list("status", flat=True)
        rows = (
            await models.DeploymentEvent.filter(deployment_id=deployment_id, sequence__gt=sent)
            .order_by("sequence")
            .limit(_BATCH)
        )
        for row in rows:
            await response.write(
                _frame(str(row.sequence), "deployment-event", dump_json(envelope(row)))
            )
            sent = row.sequence
        if len(rows) == _BATCH:
            continue
        current = str(status[0]) if status else "failed"
        if until_terminal and current in terminal and not rows:
            data = json.dumps({"deploymentId": deployment_id, "status": current})
            await response.write(_frame(None, "end", data))
            break
        if rows:
            continue  # re-check: the terminal status may have arrived with these events
        try:
            async with asyncio.timeout(KEEPALIVE_SECONDS):
                await wake.wait()
        except TimeoutError:
            await response.write(b": keepalive\n\n")
    await response.write_eof()
    return response
