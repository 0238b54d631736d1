"""The writer's rollup deltas of committed samples, kept in memory until a rollup pass."""

import asyncio
from typing import Final

from coordinator.monitoring.metrics import Accumulator, RollupKey

# Keys merged between yields to the event loop (a few milliseconds of work each).
YIELD_EVERY_KEYS: Final = 250


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
        # One dict per committed write: merging them is the pass's work, not the writer's.
        self.batches: list[dict[RollupKey, Accumulator]] = []
        self.samples = 0

    @property
    def tracking(self) -> bool:
        """Whether the deltas continue the watermark (else the next pass reads the database)."""
        return self.base is not None

    def extend(
        self, previous_max: int, new_max: int, accumulated: dict[RollupKey, Accumulator], rows: int
    ) -> None:
        """Add ``accumulated``, the deltas of ``rows`` samples committed as ids
        ``(previous_max, new_max]``.

        Called right after the commit, with no await in between, so a pass never takes deltas
        of uncommitted rows. Rows that do not directly follow ``last_id`` (another inserter,
        pruned newest rows) stop tracking: the database pass then folds them.
        """
        if self.base is None:
            return
        if previous_max != self.last_id:
            self.stop()
            return
        if self.batches:
            _merge_into(self.batches[0], accumulated)
        else:
            self.batches.append(accumulated)
        self.samples += rows
        self.last_id = new_max

    def stop(self) -> None:
        """Forget the deltas; the rows they covered are folded from the database instead."""
        self.base = None
        self.batches = []
        self.samples = 0

    def resume_at(self, position: int) -> None:
        """Track again from ``position``, the watermark every earlier row is folded into."""
        self.base = self.last_id = position
        self.batches = []
        self.samples = 0

    def take(self) -> tuple[int, int, list[dict[RollupKey, Accumulator]], int]:
        """(base, last id, delta batches, samples) so far; tracking goes on from the last id."""
        if self.base is None:
            raise RuntimeError("not tracking: the database pass folds these rows")
        taken = (self.base, self.last_id, self.batches, self.samples)
        self.resume_at(self.last_id)
        return taken


async def merge_batches(
    batches: list[dict[RollupKey, Accumulator]],
) -> dict[RollupKey, Accumulator]:
    """Merge delta batches into one dict, yielding to the event loop between slices (acks and
    API answers should not wait for a whole pass's worth of merging)."""
    if not batches:
        return {}
    merged = batches[0]
    done = 0
    for batch in batches[1:]:
        for key, acc in batch.items():
            found = merged.get(key)
            if found is None:
                merged[key] = acc
            else:
                found.merge(acc)
            done += 1
            if done % YIELD_EVERY_KEYS == 0:
                await asyncio.sleep(0)
    return merged


def _merge_into(merged: dict[RollupKey, Accumulator], batch: dict[RollupKey, Accumulator]) -> None:
    for key, acc in batch.items():
        found = merged.get(key)
        if found is None:
            merged[key] = acc
        else:
            found.merge(acc)
