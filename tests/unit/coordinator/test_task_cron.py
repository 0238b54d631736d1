"""Cron slots in a time zone: DST days fire each wall-clock time once, bad input is a 400."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from coordinator.scheduling.cron import check_schedule, next_slot
from shared.errors import InvalidRequest

NEW_YORK = "America/New_York"


def _slots(expression: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    found: list[datetime] = []
    slot = next_slot(expression, zone, start)
    while slot < end:
        found.append(slot)
        slot = next_slot(expression, zone, slot)
    return found


def test_a_0230_job_runs_once_on_the_spring_forward_day() -> None:
    # 2026-03-08: New York jumps from 02:00 EST to 03:00 EDT; 02:30 does not exist.
    day = _slots(
        "30 2 * * *",
        NEW_YORK,
        datetime(2026, 3, 8, 5, tzinfo=UTC),
        datetime(2026, 3, 9, 5, tzinfo=UTC),
    )
    assert day == [datetime(2026, 3, 8, 7, 30, tzinfo=UTC)]  # 03:30 EDT


def test_a_0130_job_runs_once_on_the_fall_back_day() -> None:
    # 2026-11-01: 01:00-02:00 happens twice; the job runs at the first 01:30 (EDT) only.
    day = _slots(
        "30 1 * * *",
        NEW_YORK,
        datetime(2026, 11, 1, 4, tzinfo=UTC),
        datetime(2026, 11, 2, 5, tzinfo=UTC),
    )
    assert day == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]


def test_an_hourly_job_on_dst_days_runs_once_per_distinct_instant() -> None:
    spring = _slots(
        "@hourly",
        NEW_YORK,
        datetime(2026, 3, 8, 4, 59, tzinfo=UTC),
        datetime(2026, 3, 9, 3, 59, tzinfo=UTC),  # local midnight to midnight: 23 h
    )
    assert len(spring) == 23
    assert len(set(spring)) == 23
    fall = _slots(
        "@hourly",
        NEW_YORK,
        datetime(2026, 11, 1, 3, 59, tzinfo=UTC),
        datetime(2026, 11, 2, 4, 59, tzinfo=UTC),
    )
    assert len(fall) == 24
    assert all(b - a >= timedelta(hours=1) for a, b in itertools.pairwise(fall))


def test_slots_are_strictly_after_the_given_instant() -> None:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert next_slot("0 12 * * *", "UTC", at) == at + timedelta(days=1)
    assert next_slot("*/5 * * * *", "UTC", at + timedelta(seconds=1)) == at + timedelta(minutes=5)
    assert next_slot("0 9 * * *", "Asia/Tokyo", at) == datetime(2026, 5, 2, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "expression", ["", "* * * *", "* * * * * *", "61 * * * *", "@sometimes", "x y z a b"]
)
def test_invalid_schedules_are_refused(expression: str) -> None:
    with pytest.raises(InvalidRequest):
        check_schedule(expression)


def test_a_schedule_that_never_fires_and_an_unknown_zone_are_refused() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidRequest, match="never fires"):
        next_slot(check_schedule("0 0 30 2 *"), "UTC", at)
    with pytest.raises(InvalidRequest, match="time zone"):
        next_slot("* * * * *", "Mars/Olympus", at)
    assert check_schedule(" */5   *  * * * ") == "*/5 * * * *"
    assert check_schedule("@DAILY") == "@daily"
