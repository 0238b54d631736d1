"""The serving coordinator's garbage-collector policy: freeze what survives, collect cycles slowly.

With thousands of agent links, most objects that outlive a young-generation collection are not
garbage: each link keeps a reader coroutine, a future and a buffer waiting for its next frame
(seconds away), and every sample waits a write cycle. The default collector walks all of them
again and again, in pauses of 100-350 ms (measured with ``bench/ingest.py``, 10,000 agents at
5 s: rollup p99 160-230 ms). Almost all of it is freed by reference counting anyway: the young
collections there found no garbage at all.

So every second whatever is alive is moved to the permanent generation (``gc.freeze``, O(1)),
and the automatic collections only see objects younger than a second. Reference cycles among
frozen objects are not found by those collections; every ``COLLECT_SECONDS`` the permanent
generation is released and one full collection frees them, a pause of about a second at
10,000 links, instead of one every minute or two.
"""

import asyncio
import gc
import logging
import time
from typing import Final

logger = logging.getLogger(__name__)

FREEZE_SECONDS: Final = 1.0
COLLECT_SECONDS: Final = 600.0
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
    freeze_seconds: float = FREEZE_SECONDS, collect_seconds: float = COLLECT_SECONDS
) -> None:
    """Freeze survivors every ``freeze_seconds`` and collect cycles every ``collect_seconds``,
    until canceled; canceling releases the permanent generation."""
    next_collect = time.monotonic() + collect_seconds
    try:
        while True:
            await asyncio.sleep(freeze_seconds)
            if time.monotonic() >= next_collect:
                collect_cycles()
                next_collect = time.monotonic() + collect_seconds
            gc.freeze()
    finally:
        gc.unfreeze()


def collect_cycles() -> int:
    """Release the permanent generation and run one full collection; return what it freed."""
    started = time.perf_counter()
    gc.unfreeze()
    found = gc.collect()
    logger.debug(
        "full collection: %d unreachable objects in %.0f ms",
        found,
        (time.perf_counter() - started) * 1000,
    )
    return found
