"""Turn Docker's log byte stream into lines: bulk 8-byte-header demux, TTY line splitting, and
the RFC 3339 timestamp prefix ``timestamps=1`` puts on every line."""

import calendar
import struct
import time
from typing import Final

from shared.messages.logs import LogStreamName

# Docker splits longer messages itself (16 KiB); this only guards the frame size limit.
MAX_MESSAGE_CHARS: Final = 65536
_HEADER: Final = struct.Struct(">BxxxL")
_STDERR: Final = 2
_ZERO_FRACTION: Final = "000000000"
_NO_TIME: Final = "1970-01-01T00:00:00.000000000Z"


RawLine = tuple[LogStreamName, int, str, str]
"""One line as read: ``(stream, time in ns, normalised timestamp text, message)``.

A plain tuple: the reader makes one per log line, and a named tuple costs several times more.
"""


class FrameDemuxer:
    """Splits the multiplexed stream (non-TTY containers) into ``(stream, payload)`` frames.

    Frames may be cut at any byte by the transport; the unfinished tail is kept for the next
    ``feed``. The loop only slices, so one call handles thousands of frames cheaply.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[tuple[LogStreamName, bytes]]:
        """Consume bytes; return every frame they complete, in order."""
        buf = self._pending + data if self._pending else data
        frames: list[tuple[LogStreamName, bytes]] = []
        pos = 0
        size_of = len(buf)
        unpack = _HEADER.unpack_from
        while size_of - pos >= 8:
            kind, length = unpack(buf, pos)
            end = pos + 8 + length
            if end > size_of:
                break
            frames.append(("stderr" if kind == _STDERR else "stdout", buf[pos + 8 : end]))
            pos = end
        self._pending = buf[pos:]
        return frames

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unfinished frame waiting for more data."""
        return len(self._pending)


class TtySplitter:
    """A TTY container's log is one raw stream (no frame headers): split it at newlines."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[tuple[LogStreamName, bytes]]:
        """Consume bytes; return the complete lines as stdout payloads."""
        buf = self._pending + data if self._pending else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._pending = buf
            return []
        self._pending = buf[cut + 1 :]
        return [("stdout", part) for part in buf[:cut].split(b"\n")]

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unfinished line."""
        return len(self._pending)


class TimestampParser:
    """Parses ``2026-01-02T03:04:05.123Z`` into nanoseconds and a 9-digit normalised text.

    The whole-second part is cached: consecutive lines almost always share it, which keeps
    parsing at a few string slices per line.
    """

    def __init__(self) -> None:
        self._seconds_text = ""
        self._seconds = 0

    def parse(self, text: str) -> tuple[int, str] | None:
        """Return ``(ns, normalised)`` or None when ``text`` is not a UTC RFC 3339 time."""
        head = text[:19]
        if head != self._seconds_text:
            if len(text) < 20 or text[10] != "T":
                return None
            try:
                seconds = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
            except ValueError:
                return None
            self._seconds_text, self._seconds = head, seconds
        if len(text) == 30 and text[19] == "." and text[-1] == "Z":
            fraction = text[20:29]  # the common case: nine digits, already normal
            normal = text
        elif len(text) == 20 and text[-1] == "Z":
            fraction = _ZERO_FRACTION
            normal = f"{head}.{fraction}Z"
        elif len(text) > 21 and text[19] == "." and text[-1] == "Z":
            fraction = (text[20:-1] + _ZERO_FRACTION)[:9]
            normal = f"{head}.{fraction}Z"
        else:
            return None
        if not fraction.isdigit():
            return None
        return self._seconds * 1_000_000_000 + int(fraction), normal


def parse_payload(stream: LogStreamName, payload: bytes, clock: TimestampParser) -> RawLine:
    """One frame/line ``b"<timestamp> <message>\\n"`` into a ``RawLine``.

    A payload without a parseable timestamp keeps its whole text and time 0 (it still flows;
    only resuming exactly at it is impossible).
    """
    # One decode per line; the timestamp is ASCII, so string offsets match byte offsets.
    text = payload.decode("utf-8", "replace")
    end = len(text)
    if end and text[end - 1] == "\n":
        end -= 1
        if end and text[end - 1] == "\r":
            end -= 1
    space = text.find(" ", 0, 40)
    parsed = clock.parse(text[:space]) if space > 0 else None
    if parsed is None:
        return (stream, 0, _NO_TIME, text[:end][:MAX_MESSAGE_CHARS])
    message = text[space + 1 : end]
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS]
    return (stream, parsed[0], parsed[1], message)


class LineDecoder:
    """Docker log bytes of one container in, ``RawLine`` tuples out.

    The fast path handles the usual line - a nine-digit timestamp in the same second as the
    previous line - with a few slices and one ``int``; anything else goes through
    ``parse_payload``.
    """

    def __init__(self, tty: bool) -> None:
        self._frames = TtySplitter() if tty else FrameDemuxer()
        self._clock = TimestampParser()
        self._second = "\0"  # the 19-character "YYYY-MM-DDTHH:MM:SS" of the last line
        self._second_ns = 0

    def feed(self, data: bytes) -> list[RawLine]:
        """Consume bytes; return the lines they complete, in order."""
        lines: list[RawLine] = []
        append = lines.append
        second, second_ns = self._second, self._second_ns
        for stream, payload in self._frames.feed(data):
            text = payload.decode("utf-8", "replace")
            if text[29:31] == "Z " and text[19] == "." and text.startswith(second):
                try:
                    ts_ns = second_ns + int(text[20:29])
                except ValueError:
                    pass
                else:
                    end = -1 if text[-1] == "\n" else len(text)
                    message = text[31:end]
                    if message[-1:] == "\r":
                        message = message[:-1]
                    if len(message) > MAX_MESSAGE_CHARS:
                        message = message[:MAX_MESSAGE_CHARS]
                    append((stream, ts_ns, text[:30], message))
                    continue
            line = parse_payload(stream, payload, self._clock)
            if line[1]:
                second = line[2][:19]
                second_ns = line[1] - line[1] % 1_000_000_000
            append(line)
        self._second, self._second_ns = second, second_ns
        return lines
