"""The sample spool: order, bound (oldest dropped, logged once), restart persistence, sequence."""

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.monitoring.spool import SPOOL_CACHE_KIB, Spool, spool_bound
from shared.messages.monitoring import Sample, Totals


def make(sequence: int) -> Sample:
    return Sample(
        sample_id=uuid.uuid4().hex,
        sequence=sequence,
        observed_at=datetime.now(UTC),
        interval_seconds=15,
        totals=Totals(),
    )


def test_bound_from_hours_and_interval() -> None:
    assert spool_bound(24, 15) == 5760
    assert spool_bound(24, 1) == 86400
    assert spool_bound(1, 7) == 515  # rounded up: never fewer than the hours asked for


def test_order_and_delete(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_samples=100)
    stored = [spool.append(make) for _ in range(5)]
    assert [s.sequence for s in stored] == [1, 2, 3, 4, 5]
    oldest = spool.oldest(3, 1 << 20)
    assert [s.sample_id for s in oldest] == [s.sample_id for s in stored[:3]]
    spool.delete([s.sample_id for s in oldest])
    assert [s.sequence for s in spool.oldest(10, 1 << 20)] == [4, 5]
    # Bytes limit: at least one sample, then no more than fit.
    assert len(spool.oldest(10, 1)) == 1
    spool.close()


def test_bound_drops_oldest_and_logs_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_samples=3)
    with caplog.at_level(logging.WARNING):
        for _ in range(7):
            spool.append(make)
    assert spool.count() == 3
    assert [s.sequence for s in spool.oldest(10, 1 << 20)] == [5, 6, 7]
    assert spool.dropped == 4
    assert len([r for r in caplog.records if "spool is full" in r.message]) == 1
    spool.close()


def test_survives_restart_and_sequence_keeps_increasing(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path, max_samples=10)
    first = [spool.append(make) for _ in range(3)]
    spool.delete([s.sample_id for s in first])  # emptied: the sequence must not restart
    kept = spool.append(make)
    spool.close()

    reopened = Spool(path, max_samples=10)
    waiting = reopened.oldest(10, 1 << 20)
    assert [s.sample_id for s in waiting] == [kept.sample_id]
    assert waiting[0] == kept
    assert reopened.append(make).sequence == 5
    reopened.close()


def test_page_cache_is_bounded(tmp_path: Path) -> None:
    # SQLite's default 2 MiB cache would stay resident after an outage's backlog is drained.
    spool = Spool(tmp_path / "spool.sqlite3", max_samples=100)
    try:
        assert spool._db.execute("PRAGMA cache_size").fetchone()[0] == -SPOOL_CACHE_KIB
    finally:
        spool.close()
