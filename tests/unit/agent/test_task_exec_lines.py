"""Exec task output: Docker's multiplexed frames into lines, a line split across frames and
transport chunks, both streams kept apart, and a last line without a newline."""

import struct

from agent.tasks.exec_run import LineSplitter


def _frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_lines_span_frames_and_chunks_and_streams_stay_apart() -> None:
    data = (
        _frame(1, b"one\ntw")
        + _frame(2, b"err ")
        + _frame(1, b"o\nthr")
        + _frame(2, b"line\n")
        + _frame(1, "é\n".encode())
    )
    splitter = LineSplitter()
    found = []
    # Cut the bytes anywhere, as the transport may.
    for start in range(0, len(data), 5):
        found.extend(splitter.feed(data[start : start + 5]))
    assert found == [
        ("stdout", "one"),
        ("stdout", "two"),
        ("stderr", "err line"),
        ("stdout", "thré"),
    ]
    assert splitter.rest() == []


def test_a_last_line_without_newline_is_kept_for_the_end() -> None:
    splitter = LineSplitter()
    assert splitter.feed(_frame(1, b"partial")) == []
    assert splitter.rest() == [("stdout", "partial")]
    assert splitter.rest() == []
