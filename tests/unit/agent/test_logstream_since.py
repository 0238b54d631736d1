"""A ``since`` time becomes Docker's seconds.nanoseconds without float rounding."""

from datetime import UTC, datetime

from agent.logstream.stream import _since_text


def test_since_never_lands_after_the_line_it_was_taken_from() -> None:
    # This instant's float timestamp prints as ...007919073: 73 ns after the line's own time,
    # so a line stamped 30 ns into that microsecond was left out of a `since` query.
    moment = datetime(2026, 12, 6, 4, 0, 0, 7919, tzinfo=UTC)
    assert f"{moment.timestamp():.9f}" == "1796529600.007919073"
    assert _since_text(moment) == "1796529600.007918999"


def test_since_keeps_whole_seconds_exact() -> None:
    assert _since_text(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == "0.999999999"
