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
and one full collection runs when it has grown by a quarter since the last one (CPython's own
rule for its oldest generation, applied to what was frozen) and at least once an hour. At
10,000 links a full collection pauses the loop 0.6-0.9 s; under steady ingest the heap hardly
grows, so that happens about hourly instead of every minute or two.
"""

import asyncio
import gc
import logging
import time
from typing import Final

logger = logging.getLogger(__name__)

FREEZE_SECONDS: Final = 1.0
# Counting the permanent generation walks it (about 20 ms for 1.2 million objects).
CHECK_SECONDS: Final = 15.0
GROWTH_BEFORE_COLLECT: Final = 0.25
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
    frozen heap grew by ``GROWTH_BEFORE_COLLECT`` or ``longest_seconds`` passed since the last
    collection. Runs until canceled; canceling releases the permanent generation."""
    gc.freeze()
    baseline = gc.get_freeze_count()
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
            if gc.get_freeze_count() > baseline * (1 + GROWTH_BEFORE_COLLECT) or now >= deadline:
                _ = collect_cycles()
                gc.freeze()
                baseline = gc.get_freeze_count()
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
