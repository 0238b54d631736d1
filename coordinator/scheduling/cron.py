"""Cron schedules in a time zone: validation and the next slot after an instant, in UTC.

The expression is iterated on the zone's local wall-clock times (croniter on naive datetimes),
and each wall-clock time is mapped to UTC with ``zoneinfo``'s first reading (``fold=0``):

* spring forward: a time inside the skipped hour (02:30 when clocks jump 02:00 -> 03:00) reads
  with the offset before the jump, so it fires once, at 03:30 local; a time that lands on the
  same instant as an existing slot fires once, not twice;
* fall back: a time inside the repeated hour (01:30 when clocks go 02:00 -> 01:00) fires once,
  at its first occurrence; the repeated hour's second pass fires nothing.

Every wall-clock time in the expression therefore fires exactly once a day it names.
"""

import functools
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, croniter

from shared.errors import InvalidRequest

ALIASES: Final = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# A slot search that finds nothing within this many cron steps names a date that never comes.
_MAX_STEPS: Final = 10_000


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field} is invalid: {message}",
        details={"problems": [{"field": field, "message": message}]},
    )


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; an unknown one is a 400."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _invalid("timezone", f"unknown time zone {name!r}") from exc


def check_schedule(expression: str) -> str:
    """The expression, normalised (whitespace collapsed); 5 fields or an alias, else a 400."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise _invalid("schedule", f"unknown alias {text!r} (one of {', '.join(ALIASES)})")
        return text.lower()
    if len(text.split(" ")) != 5:
        raise _invalid("schedule", "a cron schedule has 5 fields: minute hour day month weekday")
    try:
        if not croniter.is_valid(text):
            raise _invalid("schedule", f"{text!r} is not a valid cron expression")
    except (CroniterBadCronError, CroniterNotAlphaError) as exc:
        raise _invalid("schedule", f"{text!r} is not a valid cron expression") from exc
    return text


# Tasks due together mostly share schedule and zone: the scheduler asks the same question
# thousands of times at a busy minute.
@functools.lru_cache(maxsize=4096)
def next_slot(expression: str, timezone: str, after: datetime) -> datetime:
    """The first slot strictly after ``after`` (aware), as an aware UTC datetime."""
    tz = zone(timezone)
    local = after.astimezone(tz).replace(tzinfo=None, microsecond=0)
    try:
        times = croniter(expression, local - timedelta(seconds=1))
        for _ in range(_MAX_STEPS):
            wall: datetime = times.get_next(datetime)
            instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
            if instant > after:
                return instant
    except (CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError) as exc:
        raise _invalid("schedule", f"{expression!r} never fires: {exc}") from exc
    raise _invalid("schedule", f"{expression!r} never fires")
