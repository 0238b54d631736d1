"""What clients see of a relayed stream: API log lines (masked), and the SSE writer.

SSE wire format of ``GET /resources/{id}/runtime-logs/stream`` (``text/event-stream``):

* ``id: <cursor of the event's last line>`` / ``event: runtime-logs`` /
  ``data: {"logs": [<line>, ...]}`` - one event per agent chunk;
* ``event: gap`` / ``data: {"dropped": N}`` - N live lines were dropped because this reader
  fell behind a fast producer (the follow stays live instead of stalling);
* ``: keepalive`` every 15 s of silence;
* ``event: end`` / ``data: {"reason", "message"}`` - the stream is over (``history-complete``,
  ``container-exited``, ``error``).

Resume with ``?cursor=`` or ``Last-Event-ID``: exactly the lines after that cursor follow.
"""

import time
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web

from coordinator.logstream.masking import LineMasker
from coordinator.logstream.relay import LogRelay, RelayStream
from shared.messages.logs import LogChunk, LogEnd

KEEPALIVE_SECONDS: Final = 15.0
# How often an idle stream checks that its client is still connected.
_IDLE_CHECK_SECONDS: Final = 1.0
RUNTIME_KIND: Final = "docker-container"


@dataclass
class LineView:
    """Turns agent entries into API lines for one request, numbering them from 1."""

    resource_id: str
    service_name: str | None
    masker: LineMasker
    sequence: int = 0

    def lines(self, chunk: LogChunk) -> list[dict[str, Any]]:
        """The chunk's entries as camelCase API lines, secrets masked."""
        entries = chunk.entries
        masked = self.masker.mask_all([e["message"] for e in entries])
        out: list[dict[str, Any]] = []
        for n, entry in enumerate(entries):
            self.sequence += 1
            message, hidden = masked[n] if masked is not None else (entry["message"], False)
            out.append(
                {
                    "resourceId": self.resource_id,
                    "deploymentId": entry["deployment"],
                    "serviceName": self.service_name,
                    "runtimeKind": RUNTIME_KIND,
                    "runtimeInstanceId": entry["container"],
                    "stream": entry["stream"],
                    "timestamp": entry["timestamp"],
                    "sequence": self.sequence,
                    "cursor": entry["cursor"],
                    "message": message,
                    "masked": hidden,
                }
            )
        return out


def _frame(event_id: str | None, name: str, data: bytes) -> bytes:
    head = f"id: {event_id}\nevent: {name}\ndata: " if event_id else f"event: {name}\ndata: "
    return head.encode() + data + b"\n\n"


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def write_sse(
    request: web.Request, relay: LogRelay, stream: RelayStream, view: LineView
) -> web.StreamResponse:
    """Relay ``stream`` to the client as SSE until it ends or the client leaves."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx would otherwise buffer the stream
        }
    )
    try:
        await response.prepare(request)
        quiet_since = time.monotonic()
        while True:
            item = await stream.next(_IDLE_CHECK_SECONDS)
            if item is None:
                if _gone(request):
                    break
                if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                    await response.write(b": keepalive\n\n")
                    quiet_since = time.monotonic()
                continue
            quiet_since = time.monotonic()
            if isinstance(item, LogEnd):
                data = orjson.dumps({"reason": item.reason, "message": item.message})
                await response.write(_frame(None, "end", data))
                await response.write_eof()
                break
            await _write_chunk(response, item, view)
            # The client took the chunk (write returned once the transport accepted it).
            await stream.grant(1)
    except ConnectionError:
        pass  # the client went away; the agent is told below
    finally:
        await relay.release(stream)
    return response


async def _write_chunk(response: web.StreamResponse, chunk: LogChunk, view: LineView) -> None:
    if chunk.dropped:
        await response.write(_frame(None, "gap", orjson.dumps({"dropped": chunk.dropped})))
    if chunk.entries:
        lines = view.lines(chunk)
        await response.write(
            _frame(lines[-1]["cursor"], "runtime-logs", orjson.dumps({"logs": lines}))
        )
