"""Polling with a deadline, and deadlines scaled for slow machines (no coordinator imports).

Kept apart from ``tests.harness`` so that the agent's unit tests can also run in a process on
the lean wire layer (``scripts/test.sh``), which cannot import the coordinator.
"""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

TIMEOUT_FACTOR = float(os.environ.get("BERTH_TEST_TIMEOUT_FACTOR", "1"))


def scaled(seconds: float) -> float:
    """Scale a deadline for slow machines (``BERTH_TEST_TIMEOUT_FACTOR``)."""
    return seconds * TIMEOUT_FACTOR


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``check`` until it is true or the deadline passes (then fail with ``what``)."""
    deadline = time.monotonic() + scaled(timeout)
    delay = 0.02
    while True:
        if await check():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {scaled(timeout):.0f} s waiting for {what}")
        await asyncio.sleep(delay)  # poll interval, backing off; the deadline bounds it
        delay = min(delay * 2, 0.25)
