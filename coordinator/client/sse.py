"""Read a server-sent-events stream, resuming with ``Last-Event-ID`` when the connection drops.

The coordinator's deployment stream names every frame with an ``id:`` (the event cursor), so a
reader that reconnects with the last id it saw gets exactly the frames it missed. A refusal
(HTTP 4xx) ends the reading at once; a dropped or failed connection (or a 5xx from a restarting
coordinator) is retried with a growing pause until ``give_up_after`` seconds pass without one
successful connection.
"""

import asyncio
import codecs
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp

from coordinator.client.http import ApiClient, ApiError, ClientError, Query

# The coordinator writes a keepalive comment every 15 s; silence for this long means a dead link.
READ_TIMEOUT_SECONDS: Final = 45.0
GIVE_UP_SECONDS: Final = 60.0
_FIRST_PAUSE: Final = 0.2
_MAX_PAUSE: Final = 5.0


@dataclass(frozen=True)
class SseEvent:
    """One dispatched frame: its ``event`` name (``message`` by default), ``data`` and ``id``."""

    event: str
    data: str
    id: str | None


@dataclass
class SseParser:
    """Incremental parser of the ``text/event-stream`` format (WHATWG HTML, 9.2.6)."""

    last_id: str | None = None  # of the last dispatched frame: where a reconnection resumes
    _id: str | None = None
    _buffer: str = ""
    _data: list[str] = field(default_factory=list)
    _event: str = ""

    def feed(self, chunk: str) -> list[SseEvent]:
        """Consume text; return the frames it completed."""
        self._buffer += chunk
        done: list[SseEvent] = []
        while True:
            cut = min((i for i in (self._buffer.find("\n"), self._buffer.find("\r")) if i >= 0),
                      default=-1)  # fmt: skip
            if cut < 0:
                return done
            line = self._buffer[:cut]
            # "\r\n" is one line end; a lone "\r" at the very end may still become one.
            if self._buffer[cut] == "\r" and cut + 1 == len(self._buffer):
                return done
            step = 2 if self._buffer.startswith("\r\n", cut) else 1
            self._buffer = self._buffer[cut + step :]
            if event := self._line(line):
                done.append(event)

    def __post_init__(self) -> None:
        self._id = self.last_id

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            # Only a complete frame moves the resume point: a frame cut off by a dropped
            # connection must be sent again.
            self.last_id = self._id
            if not self._data:
                self._event = ""
                return None
            event = SseEvent(self._event or "message", "\n".join(self._data), self.last_id)
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None  # a comment (the coordinator's keepalive)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


async def read_events(
    api: ApiClient,
    path: str,
    *,
    query: Query | None = None,
    last_id: str | None = None,
    stop_after: str | None = None,
    give_up_after: float = GIVE_UP_SECONDS,
    on_reconnect: Callable[[int], None] | None = None,
) -> AsyncGenerator[SseEvent, None]:
    """Yield the frames of ``GET path``; reconnect after a drop, sending the last id seen.

    Ends after a frame named ``stop_after`` (or when the server ends the stream normally and
    ``stop_after`` is None). ``on_reconnect(attempt)`` is called before every reconnection.
    """
    parser = SseParser(last_id=last_id)
    attempt = 0
    pause = _FIRST_PAUSE
    lost_since: float | None = None
    while True:
        headers = {"Accept": "text/event-stream"}
        if parser.last_id is not None:
            headers["Last-Event-ID"] = parser.last_id
        try:
            async with api.stream(
                path, query=query, headers=headers, read_timeout=READ_TIMEOUT_SECONDS
            ) as response:
                decoder = _Utf8()
                async for chunk in response.content.iter_any():
                    for event in parser.feed(decoder.decode(chunk)):
                        # Only a frame proves the link works: a server that accepts and hangs
                        # up at once must still run into the deadline.
                        lost_since, pause = None, _FIRST_PAUSE
                        yield event
                        if stop_after is not None and event.event == stop_after:
                            return
            if stop_after is None:
                return
            # A clean end without the final frame: the coordinator went away mid-stream.
        except ApiError as exc:
            if exc.status < 500:
                raise
        except (aiohttp.ClientError, TimeoutError):
            pass
        now = time.monotonic()
        lost_since = lost_since if lost_since is not None else now
        if now - lost_since >= give_up_after:
            raise ClientError(
                f"lost the event stream of {path} and could not reconnect "
                f"within {give_up_after:.0f} s"
            )
        attempt += 1
        if on_reconnect is not None:
            on_reconnect(attempt)
        await asyncio.sleep(pause)
        pause = min(pause * 2, _MAX_PAUSE)
        parser = SseParser(last_id=parser.last_id)  # a partial frame is sent again


class _Utf8:
    """Decode UTF-8 across chunk boundaries."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def decode(self, chunk: bytes) -> str:
        """The text ``chunk`` completes."""
        return self._decoder.decode(chunk)
