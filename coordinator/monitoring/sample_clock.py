"""Newest sample per server and the raw span, kept in memory so reads need no query for them.

The writer reports every committed sample (``observed``); the first read of a server it has
not seen since start-up looks the server up once in the database. Retention pruning calls
``pruned`` so the span is looked up again after rows were deleted.
"""

from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Final

from tortoise.backends.base.client import BaseDBAsyncClient

from coordinator.db import read_connection
from coordinator.db.monitoring_models import RuntimeSample
from coordinator.db.raw_sql import bind_marks

Newest = tuple[datetime, float] | None  # (observed at, interval seconds); None: no sample
_TABLE: Final = RuntimeSample._meta.db_table
_OBSERVED_AT: Final = itemgetter(0)


class SampleClock:
    """What the writer committed last per server, and the oldest/newest raw sample."""

    def __init__(self) -> None:
        self._newest: dict[str, Newest] = {}
        # The newest of all known samples, and its server: for a scope that includes that
        # server (scope ``all`` always does) it is the answer, with no pass over the scope.
        self._latest: tuple[datetime, float, str] | None = None
        self._span: tuple[datetime | None, datetime | None] | None = None

    def observed(self, server_id: str, observed_at: datetime, interval: float) -> None:
        """A sample of ``server_id`` was committed (called by the writer after the commit)."""
        known = self._newest.get(server_id)
        if known is None or observed_at > known[0]:
            self._newest[server_id] = (observed_at, interval)
            self._note_latest(server_id, (observed_at, interval))
        if self._span is not None:
            oldest, newest = self._span
            self._span = (
                observed_at if oldest is None or observed_at < oldest else oldest,
                observed_at if newest is None or observed_at > newest else newest,
            )

    def pruned(self) -> None:
        """Raw samples were deleted: span and newest samples are read from the database again
        (a server whose every sample expired has no newest sample any more)."""
        self._span = None
        self._newest = {}
        self._latest = None

    def _note_latest(self, server_id: str, newest: Newest) -> None:
        if newest is not None and (self._latest is None or newest[0] > self._latest[0]):
            self._latest = (newest[0], newest[1], server_id)

    async def newest(self, server_ids: list[str]) -> tuple[datetime | None, float | None]:
        """Observed time and interval of the newest sample among ``server_ids``."""
        # C-level passes (map, all, filter, itemgetter, list membership): scope ``all`` asks
        # this for every server on each request; Python loops over 10,000 ids cost 3-4 ms, and
        # even the C-level max over them 10 ms on a busy core (aware datetimes compare slowly).
        if not all(map(self._newest.__contains__, server_ids)):
            unknown = sorted(set(server_ids).difference(self._newest))
            loaded = await _newest_in_database(read_connection(), unknown)
            self._newest.update(loaded)
            for server_id, stored in loaded.items():
                self._note_latest(server_id, stored)
        latest = self._latest
        if latest is not None and latest[2] in server_ids:
            return latest[0], latest[1]
        found = filter(None, map(self._newest.get, server_ids))
        newest: tuple[datetime, float] | None = max(found, key=_OBSERVED_AT, default=None)
        return (None, None) if newest is None else newest

    async def span(self) -> tuple[datetime | None, datetime | None]:
        """Observed times of the oldest and the newest stored raw sample."""
        if self._span is None:
            reads = read_connection()
            oldest = (
                await RuntimeSample.all()
                .using_db(reads)
                .order_by("observed_at")
                .limit(1)
                .values_list("observed_at", flat=True)
            )
            newest = (
                await RuntimeSample.all()
                .using_db(reads)
                .order_by("-observed_at")
                .limit(1)
                .values_list("observed_at", flat=True)
            )
            found = (_aware(oldest[0]) if oldest else None, _aware(newest[0]) if newest else None)
            if self._span is None:  # a sample committed meanwhile has already set it
                self._span = found
        return self._span


async def _newest_in_database(db: BaseDBAsyncClient, server_ids: list[str]) -> dict[str, Newest]:
    """Each server's newest stored sample: one index seek per server, in one statement."""
    sqlite = db.capabilities.dialect == "sqlite"
    found: dict[str, Newest] = {}
    for first in range(0, len(server_ids), 1000):
        part = server_ids[first : first + 1000]
        marks = ", ".join(f"({mark})" for mark in bind_marks(db.capabilities.dialect, len(part)))
        newest = (
            f'FROM "{_TABLE}" r WHERE r."server_id" = s.id ORDER BY r."observed_at" DESC LIMIT 1'
        )
        # Only the table name and placeholders are formatted in; the ids are bound.
        sql = (
            f'SELECT s.id AS "server_id", (SELECT r."observed_at" {newest}) AS "observed_at", '  # noqa: S608
            f'(SELECT r."interval_seconds" {newest}) AS "interval_seconds" '
            f"FROM ({_values(sqlite, marks)}) s"
        )
        _, rows = await db.execute_query(sql, part)
        for row in rows:
            observed = row["observed_at"]
            found[str(row["server_id"])] = (
                None if observed is None else (_aware(observed), float(row["interval_seconds"]))
            )
    return found


def _values(sqlite: bool, rows: str) -> str:
    """A query of one column ``id`` over the bound ids (SQLite names VALUES columns itself)."""
    if sqlite:
        return f"SELECT column1 AS id FROM (VALUES {rows})"  # noqa: S608 - placeholders only
    return f"SELECT id FROM (VALUES {rows}) AS v(id)"  # noqa: S608 - placeholders only


def _aware(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
