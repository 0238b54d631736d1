"""Log decoding: bulk demux across arbitrary cuts, TTY splitting, timestamps, cursors, buffer."""

import asyncio
import random
import struct

import pytest

from agent.logstream import cursor
from agent.logstream.buffer import Buffered, LineBuffer, SourceRef
from agent.logstream.decode import (
    FrameDemuxer,
    LineDecoder,
    TimestampParser,
    TtySplitter,
    parse_payload,
)
from shared.errors import InvalidRequest


def _frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(payload)) + payload


FRAMES = [
    (1, b"2026-01-02T03:04:05.123456789Z hello\n"),
    (2, b"2026-01-02T03:04:05.2Z oops \xe2\x9c\x93\n"),
    (1, b""),
    (1, b"2026-01-02T03:04:06Z " + b"x" * 70000 + b"\n"),
    (1, b"2026-01-02T03:04:06Z partial-without-newline"),
]
STREAM = b"".join(_frame(kind, payload) for kind, payload in FRAMES)
EXPECTED = [("stderr" if kind == 2 else "stdout", payload) for kind, payload in FRAMES]


def test_demux_handles_every_single_cut_point() -> None:
    for cut in range(len(STREAM) + 1):
        demux = FrameDemuxer()
        got = demux.feed(STREAM[:cut]) + demux.feed(STREAM[cut:])
        assert got == EXPECTED, cut
        assert demux.pending_bytes == 0


def test_demux_handles_random_tiny_pieces() -> None:
    rng = random.Random(7)  # noqa: S311  (reproducible cut points, not security)
    for _ in range(20):
        demux = FrameDemuxer()
        got: list[tuple[str, bytes]] = []
        pos = 0
        while pos < len(STREAM):
            step = rng.randint(1, 9)
            got += demux.feed(STREAM[pos : pos + step])
            pos += step
        assert got == EXPECTED


def test_tty_stream_is_split_at_newlines_as_stdout() -> None:
    raw = b"2026-01-02T03:04:05Z a\n2026-01-02T03:04:05Z b\r\n2026-01-02T03:04:05Z c"
    for cut in range(len(raw) + 1):
        splitter = TtySplitter()
        got = splitter.feed(raw[:cut]) + splitter.feed(raw[cut:])
        assert [p for _, p in got] == [b"2026-01-02T03:04:05Z a", b"2026-01-02T03:04:05Z b\r"]
        assert {s for s, _ in got} == {"stdout"}
        assert splitter.pending_bytes == len(b"2026-01-02T03:04:05Z c")


@pytest.mark.parametrize(
    ("text", "ns_fraction", "normal"),
    [
        ("2026-01-02T03:04:05.123456789Z", 123456789, "2026-01-02T03:04:05.123456789Z"),
        ("2026-01-02T03:04:05.5Z", 500000000, "2026-01-02T03:04:05.500000000Z"),
        ("2026-01-02T03:04:05Z", 0, "2026-01-02T03:04:05.000000000Z"),
    ],
)
def test_timestamps_parse_to_ns_and_normalise(text: str, ns_fraction: int, normal: str) -> None:
    parsed = TimestampParser().parse(text)
    assert parsed == (1767323045 * 1_000_000_000 + ns_fraction, normal)


@pytest.mark.parametrize(
    "text",
    ["", "hello", "2026-01-02T03:04:05+01:00", "2026-13-02T03:04:05Z", "2026-01-02T03:04:05.x1Z"],
)
def test_bad_timestamps_are_rejected(text: str) -> None:
    assert TimestampParser().parse(text) is None


def test_payload_parsing_keeps_text_and_survives_garbage() -> None:
    clock = TimestampParser()
    line = parse_payload("stderr", b"2026-01-02T03:04:05.1Z a b \xff\n", clock)
    assert line == ("stderr", 1767323045_100000000, "2026-01-02T03:04:05.100000000Z", "a b \ufffd")
    plain = parse_payload("stdout", b"no timestamp here\n", clock)
    assert (plain[1], plain[3]) == (0, "no timestamp here")
    huge = parse_payload("stdout", b"2026-01-02T03:04:05Z " + b"y" * 70000, clock)
    assert len(huge[3]) == 65536


def test_cursor_round_trip_and_rejects_foreign_text() -> None:
    positions = {"abcdef012345": (1767323045_100000000, 0), "0123456789ab": (5, 3)}
    assert cursor.decode(cursor.encode(positions)) == positions
    assert cursor.decode("c1") == {}
    for bad in (
        "",
        "c2.abc-1-2",
        "c1.abc-x-2",
        "c1.abc",
        "c1.a b-1-1",
        "c1." + ".".join(["a-1-1"] * 41),
    ):
        with pytest.raises(InvalidRequest):
            cursor.decode(bad)


def test_tracker_carries_every_container_position() -> None:
    tracker = cursor.PositionTracker({"aaa": (10, 0)})
    assert cursor.decode(tracker.advance("bbb", (20, 1))) == {"aaa": (10, 0), "bbb": (20, 1)}
    assert cursor.decode(tracker.advance("aaa", (30, 0))) == {"aaa": (30, 0), "bbb": (20, 1)}
    single = cursor.PositionTracker()
    assert single.advance("ccc", (7, 2)) == cursor.encode({"ccc": (7, 2)})


def test_since_includes_the_cursor_timestamp() -> None:
    assert cursor.since_for((1767323045_000000000, 4)) == "1767323044.999999999"
    assert cursor.since_for((0, 0)) == "0.000000000"


def _lines(start: int, count: int, ts: int) -> list[Buffered]:
    ref = SourceRef("abc", None)
    return [(ref, 0, "stdout", ts, "t", f"m{n}") for n in range(start, start + count)]


async def test_live_overflow_drops_the_oldest_lines_and_counts_them() -> None:
    buffer = LineBuffer(live_after_ns=100, max_bytes=10**9, max_lines=10)
    await buffer.put(_lines(0, 8, ts=200))
    await buffer.put(_lines(8, 7, ts=200))  # 15 lines into room for 10: 5 oldest go
    taken, dropped = buffer.take(10**9, 100)
    assert dropped == 5
    assert [item[5] for item in taken] == [f"m{n}" for n in range(5, 15)]
    assert buffer.take(10**9, 100) == ([], 0)


async def test_history_waits_for_space_instead_of_dropping() -> None:
    buffer = LineBuffer(live_after_ns=100, max_bytes=10**9, max_lines=4)
    await buffer.put(_lines(0, 4, ts=50))
    blocked = asyncio.create_task(buffer.put(_lines(4, 2, ts=50)))
    for _ in range(5):
        await asyncio.sleep(0)  # let it run as far as it can
    assert not blocked.done()
    taken, dropped = buffer.take(10**9, 3)
    assert (len(taken), dropped) == (3, 0)
    await asyncio.wait_for(blocked, 1)
    rest, dropped = buffer.take(10**9, 100)
    assert [item[5] for item in rest] == ["m3", "m4", "m5"]
    assert dropped == 0


def test_take_respects_byte_and_line_limits_but_always_moves() -> None:
    buffer = LineBuffer(live_after_ns=0)
    big: list[Buffered] = [(SourceRef("a", None), 0, "stdout", 1, "t", "x" * 1000)] * 5
    buffer._items.extend(big)
    buffer._bytes = 5 * (1000 + 64)
    taken, _ = buffer.take(10, 100)
    assert len(taken) == 1  # one oversized line still goes
    taken, _ = buffer.take(10**9, 2)
    assert len(taken) == 2


def test_line_decoder_fast_and_slow_paths_agree() -> None:
    lines = [
        b"2026-01-02T03:04:05.123456789Z first\n",
        b"2026-01-02T03:04:05.223456789Z second\r\n",
        b"2026-01-02T03:04:06.1Z next second, short fraction\n",
        b"2026-01-02T03:04:06.000000002Z back on the fast path\n",
        b"no timestamp at all\n",
        b"2026-01-02T03:04:06.00000000xZ not digits\n",
    ]
    stream = b"".join(_frame(2 if n == 1 else 1, line) for n, line in enumerate(lines))
    clock = TimestampParser()
    expected = [parse_payload("stderr" if n == 1 else "stdout", line, clock)
                for n, line in enumerate(lines)]  # fmt: skip
    for cut in range(0, len(stream) + 1, 7):
        decoder = LineDecoder(tty=False)
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == expected, cut
    assert [line[3] for line in expected][:2] == ["first", "second"]
    tty = LineDecoder(tty=True)
    assert tty.feed(b"".join(lines)) == [("stdout", *line[1:]) for line in expected]
