"""The bounded on-disk sample spool (SQLite, WAL): samples wait here until the coordinator acks."""

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from shared.messages.monitoring import Sample

logger = logging.getLogger(__name__)

SPOOL_FILE = "monitoring-spool.sqlite3"
SPOOL_CACHE_KIB = 512
_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    sequence INTEGER PRIMARY KEY,
    sample_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def spool_bound(hours: float, interval_seconds: float) -> int:
    """How many samples ``hours`` of sampling at ``interval_seconds`` hold."""
    return max(int(hours * 3600 / interval_seconds + 0.999), 1)


class Spool:
    """Blocking API (call it from worker threads); one connection guarded by a lock.

    ``sequence`` keeps increasing across restarts and after the spool empties (it is stored in
    ``meta``), so the coordinator sees one ordered stream per agent.
    """

    def __init__(self, path: Path, max_samples: int) -> None:
        self.path = path
        self.max_samples = max_samples
        self._lock = threading.Lock()
        self._dropped_logged = False
        self.dropped = 0
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Metrics tolerate losing the last instant on power loss; NORMAL avoids an fsync each.
        self._db.execute("PRAGMA synchronous=NORMAL")
        # SQLite's default page cache (2 MiB) fills up while an outage backs samples up and is
        # never given back: draining reads the oldest rows once, in order, so 512 KiB serves it
        # as well and keeps the agent's resident memory flat across outages.
        self._db.execute(f"PRAGMA cache_size=-{SPOOL_CACHE_KIB}")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def append(self, make: Callable[[int], Sample]) -> Sample:
        """Build the next sample with its sequence number and store it; drop the oldest beyond
        the bound."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key='sequence'").fetchone()
                last = max(int(row[0]) if row else 0, self._max_sequence())
                sample = make(last + 1)
                self._db.execute(
                    "INSERT INTO samples (sequence, sample_id, body) VALUES (?, ?, ?)",
                    (sample.sequence, sample.sample_id, sample.model_dump_json(by_alias=True)),
                )
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('sequence', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (sample.sequence,),
                )
                dropped = self._trim(sample.sequence)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if dropped:
            self.dropped += dropped
            if not self._dropped_logged:
                # Once per process: an outage longer than the spool logs one line, not thousands.
                self._dropped_logged = True
                logger.warning(
                    "sample spool is full (%d samples): dropping the oldest undelivered samples",
                    self.max_samples,
                )
        return sample

    def _max_sequence(self) -> int:
        row = self._db.execute("SELECT MAX(sequence) FROM samples").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _trim(self, newest: int) -> int:
        # Sequences are consecutive and acks remove the oldest first, so the bound is a key
        # range: no COUNT(*) over a spool that may hold hundreds of megabytes after an outage.
        cursor = self._db.execute(
            "DELETE FROM samples WHERE sequence <= ?", (newest - self.max_samples,)
        )
        return max(cursor.rowcount, 0)

    def oldest(self, limit: int, max_bytes: int) -> list[Sample]:
        """The oldest samples in order: at most ``limit`` and about ``max_bytes`` of JSON (always
        at least one when any is waiting)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM samples ORDER BY sequence LIMIT ?", (limit,)
            ).fetchall()
        samples: list[Sample] = []
        size = 0
        for (body,) in rows:
            size += len(body)
            if samples and size > max_bytes:
                break
            samples.append(Sample.model_validate_json(body))
        return samples

    def delete(self, sample_ids: list[str]) -> None:
        """Forget delivered samples."""
        if not sample_ids:
            return
        marks = ",".join("?" * len(sample_ids))
        with self._lock:
            # One statement, so one transaction (and one WAL commit) per acknowledged batch.
            self._db.execute(f"DELETE FROM samples WHERE sample_id IN ({marks})", sample_ids)  # noqa: S608

    def count(self) -> int:
        """Samples waiting."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
