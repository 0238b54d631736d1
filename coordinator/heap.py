"""The serving coordinator's garbage-collector policy: freeze what survives, collect cycles rarely.

With thousands of agent links, most objects that outlive a young-generation collection are not
garbage: each link keeps a reader coroutine, a future and a buffer waiting for its next frame
(seconds away), and every sample waits a write cycle. The default collector walks all of them
again and again, in pauses of 100-350 ms (measured with ``bench/ingest.py``, 10,000 agents at
5 s: rollup p99 160-230 ms). Almost all of it is freed by reference counting anyway: the young
collections there found no garbage at all.

So every second whatever is alive is moved to the permanent generation (``gc.freeze``, O(1)),
and the automatic collections only see objects younger than a second. Reference cycles among
frozen objects are not found by those collections, so the permanent generation is released
and one full collection runs when the heap has grown by a quarter since the last one (CPython's
own rule for its oldest generation, applied to the allocator's live blocks; more after
collections that found nothing) and at least once an hour. At 10,000 links a full collection
pauses the loop 0.6-1 s; under steady ingest the heap hardly grows, so that happens about hourly
instead of every minute or two.
"""

import asyncio
import gc
import logging
import sys
import time
from typing import Final

logger = logging.getLogger(__name__)

FREEZE_SECONDS: Final = 1.0
# Growth is measured in the allocator's live blocks (``sys.getallocatedblocks``, under a
# millisecond), not ``gc.get_freeze_count``: that walks the permanent generation's list, which
# stalled the loop 130-285 ms at every check at 10,000 links (a thread sampling the loop's stack).
CHECK_SECONDS: Final = 15.0
GROWTH_BEFORE_COLLECT: Final = 0.25
# A full collection that found less garbage than this share of the heap's blocks was paid for
# (0.6-1.4 s at 10,000 links) for nothing: growth alone (a fleet joining, caches filling) made
# no cycles. The next one then waits for four times the growth, up to MOST_GROWTH; one that
# found garbage sets it back. Measured while 10,000 agents joined and their first rollups
# filled memory: collections 15 s apart found 44,454, 22,304, 5 and 0 objects (the last, with
# twice the growth, a 1.4 s pause a minute and a half later).
WORTHWHILE_SHARE: Final = 0.01
MOST_GROWTH: Final = 4.0
LONGEST_SECONDS: Final = 3600.0
# Young collections still run between freezes, after this many new container objects.
YOUNG_THRESHOLD: Final = 50_000


def configure() -> None:
    """Freeze what start-up loaded (modules, schemas, ORM metadata) and set the thresholds.

    The default first-generation threshold (700) ran a collection every few frames during
    sample ingest (ack p50 3.7 s -> 0.6-0.8 s at 2,000 samples/s on one core).
    """
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)


async def run_collector(
    freeze_seconds: float = FREEZE_SECONDS,
    check_seconds: float = CHECK_SECONDS,
    longest_seconds: float = LONGEST_SECONDS,
) -> None:
    """Freeze survivors every ``freeze_seconds``; every ``check_seconds`` collect cycles if the
    heap grew by ``GROWTH_BEFORE_COLLECT`` (more after fruitless collections, see
    ``WORTHWHILE_SHARE``) or ``longest_seconds`` passed since the last collection. Runs until
    canceled; canceling releases the permanent generation."""
    gc.freeze()
    baseline = sys.getallocatedblocks()
    growth = GROWTH_BEFORE_COLLECT
    now = time.monotonic()
    next_check, deadline = now + check_seconds, now + longest_seconds
    try:
        while True:
            await asyncio.sleep(freeze_seconds)
            gc.freeze()
            now = time.monotonic()
            if now < next_check:
                continue
            next_check = now + check_seconds
            if sys.getallocatedblocks() > baseline * (1 + growth) or now >= deadline:
                found = collect_cycles()
                gc.freeze()
                baseline = sys.getallocatedblocks()
                worthwhile = found >= baseline * WORTHWHILE_SHARE
                growth = GROWTH_BEFORE_COLLECT if worthwhile else min(4 * growth, MOST_GROWTH)
                deadline = time.monotonic() + longest_seconds
    finally:
        gc.unfreeze()


def collect_cycles() -> int:
    """Release the permanent generation and run one full collection; return what it freed."""
    started = time.perf_counter()
    gc.unfreeze()
    found = gc.collect()
    logger.info(
        "full garbage collection: %d unreachable objects, %.0f ms",
        found,
        (time.perf_counter() - started) * 1000,
    )
    return found
