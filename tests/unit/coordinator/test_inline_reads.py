"""Inline SQLite reads: short reads on the loop's thread, long or blocked ones on the worker."""

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise.exceptions import OperationalError

from coordinator.db.inline_reads import InlineReadClient

# A read of many SQLite steps: summing 1..200,000 through a recursive CTE.
LONG_READ = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) "
    'SELECT SUM(i) AS "total" FROM n'
)
LONG_TOTAL = 200000 * 200001 // 2


def _make_database(path: Path, journal_mode: str) -> None:
    with sqlite3.connect(path) as db:
        _ = db.execute(f"PRAGMA journal_mode={journal_mode}")
        _ = db.execute('CREATE TABLE "things" ("id" INTEGER PRIMARY KEY, "name" TEXT)')
        _ = db.executemany('INSERT INTO "things" ("name") VALUES (?)', [("a",), ("b",)])
    db.close()


@pytest.fixture
async def reads(tmp_path: Path) -> AsyncIterator[InlineReadClient]:
    path = tmp_path / "reads.sqlite3"
    _make_database(path, "WAL")
    client = InlineReadClient(str(path), connection_name="reads", journal_mode="WAL")
    yield client
    await client.close()


async def test_a_short_read_runs_inline(reads: InlineReadClient) -> None:
    rows = await reads.execute_query_dict('SELECT "name" FROM "things" ORDER BY "id"')
    assert rows == [{"name": "a"}, {"name": "b"}]
    count, found = await reads.execute_query('SELECT "id" FROM "things" WHERE "name" = ?', ["b"])
    assert count == 1
    assert [row["id"] for row in found] == [2]
    assert (reads.inline_reads, reads.deferred_reads) == (2, 0)


async def test_a_read_past_its_budget_is_done_again_on_the_worker_thread(
    reads: InlineReadClient,
) -> None:
    reads.budget = 0.0  # every read is past its budget at the first check
    rows = await reads.execute_query_dict(LONG_READ)
    assert rows == [{"total": LONG_TOTAL}]
    assert (reads.inline_reads, reads.deferred_reads) == (0, 1)

    reads.budget = 60.0  # the same read within a generous budget stays inline
    assert await reads.execute_query_dict(LONG_READ) == [{"total": LONG_TOTAL}]
    assert (reads.inline_reads, reads.deferred_reads) == (1, 1)


async def test_writes_are_refused(reads: InlineReadClient) -> None:
    with pytest.raises(OperationalError, match="readonly"):
        _ = await reads.execute_query('INSERT INTO "things" ("name") VALUES (?)', ["c"])
    assert await reads.execute_query_dict('SELECT COUNT(*) AS "n" FROM "things"') == [{"n": 2}]


async def test_a_locked_database_defers_the_read_instead_of_blocking_the_loop(
    tmp_path: Path,
) -> None:
    # Rollback-journal mode: a writer's exclusive lock keeps readers out (WAL never would).
    path = tmp_path / "locked.sqlite3"
    _make_database(path, "DELETE")
    reads = InlineReadClient(str(path), connection_name="reads", journal_mode="DELETE")
    await reads.create_connection(with_db=True)
    holder = sqlite3.connect(path, isolation_level=None)
    _ = holder.execute("BEGIN EXCLUSIVE")
    try:
        loop = asyncio.get_running_loop()
        _ = loop.call_later(0.2, holder.rollback)  # the worker thread waits for it
        rows = await reads.execute_query_dict('SELECT COUNT(*) AS "n" FROM "things"')
        assert rows == [{"n": 2}]
        assert (reads.inline_reads, reads.deferred_reads) == (0, 1)
    finally:
        holder.close()
        await reads.close()


def _worker_threads() -> set[threading.Thread]:
    """aiosqlite's connection threads alive now (each runs ``_connection_worker_thread``)."""
    return {
        thread
        for thread in threading.enumerate()
        if getattr(getattr(thread, "_target", None), "__name__", "") == "_connection_worker_thread"
    }


async def test_first_reads_at_once_open_one_worker_connection(tmp_path: Path) -> None:
    path = tmp_path / "reads.sqlite3"
    _make_database(path, "WAL")
    before = _worker_threads()
    reads = InlineReadClient(str(path), connection_name="reads", journal_mode="WAL")
    try:
        # Both reads find no connection yet; each used to open its own, and one leaked.
        await asyncio.gather(
            reads.execute_query('SELECT "name" FROM "things"'),
            reads.execute_query('SELECT "name" FROM "things"'),
        )
        opened = _worker_threads() - before
        assert len(opened) == 1
    finally:
        await reads.close()
    for thread in opened:
        thread.join(timeout=5)  # closing ends the thread; a leaked one would still run
        assert not thread.is_alive()
