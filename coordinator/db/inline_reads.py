"""SQLite reads on the event loop's own thread, within a time budget, else on a worker thread.

Why not always a worker thread: under ingest load the event loop holds the GIL most of the
time, and a query on a worker thread needs the GIL several times (to start, once per fetched
row, to hand its result back) and then a turn of the busy loop to resume the waiting request.
Measured with 2,000 agents sending a sample a second, a 1 ms indexed read took 10-50 ms that
way, and a dashboard request that makes several reads waited for each of them. Most reads
the API makes (a token, a server, a cached rollup's current bucket) take well under a
millisecond of SQLite time, so running them where the request already is costs less than the
hop. A budget bounds what the loop can lose: a progress handler interrupts a read that runs
past it, and the read is done again on the worker thread (``SqliteClient``), as before. A
read that finds the database busy also goes to the worker thread, which waits for it.
"""

import asyncio
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final

from tortoise.backends.sqlite.client import SqliteClient, translate_exceptions

# How long a read may hold the event loop. The longest read a dashboard makes often is a
# whole organization's current bucket (2,000 servers' rows: about 15 ms of SQLite alone, 30 ms
# on a core shared with ingest); on the worker thread that same read took 250 ms under load,
# because its thread shares that core and then waits for the GIL and a turn of the loop. Past
# the budget a read is a scan (a cold week of many servers), and scans belong on the thread.
DEFAULT_BUDGET_SECONDS: Final = 0.05
# SQLite virtual-machine steps between two budget checks (about 10-50 us of work each).
_CHECK_EVERY_STEPS: Final = 1000
_DEFERRED_ERRORS: Final = frozenset({"SQLITE_INTERRUPT", "SQLITE_BUSY", "SQLITE_LOCKED"})
# Set in background work that nobody waits for (renewing the rollup read cache): its reads go
# straight to the worker thread, so they never take the loop's time from requests.
_IN_BACKGROUND: ContextVar[bool] = ContextVar("berth_background_reads", default=False)


@contextmanager
def background_reads() -> Iterator[None]:
    """Reads in this block (and tasks it starts) run on the worker thread, never inline."""
    token = _IN_BACKGROUND.set(True)
    try:
        yield
    finally:
        _IN_BACKGROUND.reset(token)


class InlineReadClient(SqliteClient):
    """A read-only SQLite client: each read runs inline within ``budget`` seconds, or on the
    worker thread of the ``SqliteClient`` it extends when it would take longer."""

    def __init__(
        self, file_path: str, budget: float = DEFAULT_BUDGET_SECONDS, **kwargs: Any
    ) -> None:
        # query_only: this client is for reads; a write through it is a bug, refused by SQLite.
        super().__init__(file_path, **kwargs, query_only="ON")
        self.budget = budget
        self.inline_reads = 0  # counters for diagnostics and tests
        self.deferred_reads = 0
        self._inline: sqlite3.Connection | None = None
        self._deadline = float("inf")
        # Two first reads at once would each open the worker-thread connection and leak one
        # (its thread then keeps the process from exiting): connecting is one at a time.
        self._connecting = asyncio.Lock()

    async def create_connection(self, with_db: bool) -> None:
        async with self._connecting:
            await self._connect(with_db)

    async def _connect(self, with_db: bool) -> None:
        if self._connection is None:
            await super().create_connection(with_db)
        if self._inline is None:
            # isolation_level=None: every read sees the last commit (autocommit, as the thread
            # client does). busy_timeout=0: never wait on the loop; the thread client waits.
            inline = sqlite3.connect(self.filename, isolation_level=None)
            inline.row_factory = sqlite3.Row
            inline.execute("PRAGMA query_only=ON")
            inline.execute("PRAGMA busy_timeout=0")
            inline.set_progress_handler(self._past_budget, _CHECK_EVERY_STEPS)
            self._inline = inline

    async def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        await super().close()

    def _past_budget(self) -> int:
        return 1 if time.perf_counter() > self._deadline else 0  # non-zero interrupts the read

    async def _rows_inline(self, query: str, values: list[Any] | None) -> list[Any] | None:
        """The rows of ``query``, or None when it must run on the worker thread instead."""
        if _IN_BACKGROUND.get():
            return None
        if self._inline is None:
            await self.create_connection(with_db=True)
        inline = self._inline
        if inline is None or inline.in_transaction:  # reads never open one; be safe anyway
            return None
        self._deadline = time.perf_counter() + self.budget
        try:
            rows = inline.execute(query, values or ()).fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorname not in _DEFERRED_ERRORS:
                raise
            self.deferred_reads += 1
            return None
        finally:
            self._deadline = float("inf")
        self.inline_reads += 1
        return rows

    @translate_exceptions
    async def execute_query(
        self, query: str, values: list[Any] | None = None
    ) -> tuple[int, Sequence[dict[str, Any]]]:
        rows = await self._rows_inline(query.replace("\x00", "'||CHAR(0)||'"), values)
        if rows is None:
            counted: tuple[int, Sequence[dict[str, Any]]] = await super().execute_query(
                query, values
            )
            return counted
        return len(rows), rows

    @translate_exceptions
    async def execute_query_dict(
        self, query: str, values: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        rows = await self._rows_inline(query.replace("\x00", "'||CHAR(0)||'"), values)
        if rows is None:
            found: list[dict[str, Any]] = await super().execute_query_dict(query, values)
            return found
        return [dict(row) for row in rows]
