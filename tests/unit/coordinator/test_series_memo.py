"""Rollup answers reuse validated series while the read cache serves the same figures."""

from datetime import UTC, datetime, timedelta

from coordinator.monitoring.rollup_reads import SeriesMemo, _series_of

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_series_are_validated_once_per_figures_and_follow_renewed_ones() -> None:
    memo = SeriesMemo(limit=2)
    points = [(T0, 3, {"cpu.busyPercent": 5.0}), (T0 + HOUR, 1, {"cpu.busyPercent": 7.0})]
    first = memo.series(points, ["cpu"], "hour")
    assert first == _series_of(points, ["cpu"], "hour")
    assert memo.series(list(points), ["cpu"], "hour") is first  # same figures, new list

    # A pass renewed the current bucket: new figures, new answer.
    renewed = [points[0], (T0 + HOUR, 2, {"cpu.busyPercent": 9.0})]
    changed = memo.series(renewed, ["cpu"], "hour")
    assert changed is not first
    last = changed[0].points[-1]
    assert (last.sample_count, last.totals.cpu and last.totals.cpu.busy_percent) == (2, 9.0)

    # Other signals are another answer; the memo keeps only the newest two.
    assert memo.series(points, ["cpu", "memory"], "hour") is not first
    again = memo.series(points, ["cpu"], "hour")
    assert again is not first
    assert again == first
