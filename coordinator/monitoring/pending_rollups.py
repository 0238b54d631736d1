"""The writer's rollup deltas of committed samples, kept in memory until a rollup pass."""

from coordinator.monitoring.metrics import (
    STORED_BUCKETS,
    Accumulator,
    FoldedSample,
    RollupKey,
    add_folded,
)

StoredRow = tuple[int, Accumulator]  # a rollup row's id and its figures as stored


class PendingRollups:
    """Rollup deltas of the samples the writer committed past the watermark, kept in memory.

    The writer accumulates each batch it stores (off the commit path, in slices) and hands the
    result over here right after the commit (``extend``), so the periodic pass only merges
    these deltas into rollup rows and moves the watermark in one transaction, instead of
    reading the raw rows back and decoding them. The deltas cover exactly the sample ids
    ``(base, last_id]``; ``base is None`` means "not tracking": the rows past the watermark are
    then folded from the database, after which tracking resumes at the new watermark.
    """

    def __init__(self) -> None:
        self.base: int | None = None
        self.last_id = 0
        self.deltas: dict[RollupKey, Accumulator] = {}
        self.samples = 0
        # The rows the last flush updated, as stored: key -> (row id, figures). The next flush
        # merges into these instead of reading 10,000 servers' rows back (their current
        # buckets are the same keys pass after pass). Only flushes write rollup rows while
        # tracking; anything else (a database pass, a failed flush) forgets them.
        self.written: dict[RollupKey, StoredRow] = {}

    @property
    def tracking(self) -> bool:
        """Whether the deltas continue the watermark (else the next pass reads the database)."""
        return self.base is not None

    def extend(self, previous_max: int, new_max: int, folded: list[FoldedSample]) -> None:
        """Add ``folded``, the samples committed as ids ``(previous_max, new_max]``.

        Called right after the commit, with no await in between, so a pass never takes deltas
        of uncommitted rows. Rows that do not directly follow ``last_id`` (another inserter,
        pruned newest rows) stop tracking: the database pass then folds them.
        """
        if self.base is None:
            return
        if previous_max != self.last_id:
            self.stop()
            return
        # Added straight into the one dict of deltas: a dict per write merged in here cost a
        # second accumulator per key and write, and the merge (measured at 10,000 agents).
        add_folded(self.deltas, folded, STORED_BUCKETS)
        self.samples += len(folded)
        self.last_id = new_max

    def stop(self) -> None:
        """Forget the deltas; the rows they covered are folded from the database instead."""
        self.base = None
        self.deltas = {}
        self.samples = 0
        self.written = {}

    def resume_at(self, position: int) -> None:
        """Track again from ``position``, the watermark every earlier row is folded into
        (by a database pass: rows written since are read back, not merged from memory)."""
        self._start_at(position)
        self.written = {}

    def take(self) -> tuple[int, int, dict[RollupKey, Accumulator], int]:
        """(base, last id, deltas, samples) so far; tracking goes on from the last id."""
        if self.base is None:
            raise RuntimeError("not tracking: the database pass folds these rows")
        taken = (self.base, self.last_id, self.deltas, self.samples)
        self._start_at(self.last_id)  # the rows a flush writes are remembered by the flush
        return taken

    def _start_at(self, position: int) -> None:
        self.base = self.last_id = position
        self.deltas = {}
        self.samples = 0
