"""The DNS-01 issuer's loop stops cleanly when cancelled while it works out its pause."""

import asyncio
import contextlib
import gc
from typing import Any

from coordinator.dns01.issuer import Issuer


async def test_a_cancel_during_the_pause_query_leaves_no_unawaited_wait() -> None:
    issuer = Issuer.__new__(Issuer)  # the loop needs none of the ordering parts
    issuer._wake = asyncio.Event()
    in_pause = asyncio.Event()

    async def nothing_due() -> None:
        return None

    async def slow_pause(_: float) -> float:
        in_pause.set()
        await asyncio.Event().wait()  # the pause's query, cancelled mid-way
        return 1.0

    patched: Any = issuer
    patched.run_due = nothing_due
    patched._pause = slow_pause
    loop = asyncio.create_task(issuer.run(60.0))
    await asyncio.wait_for(in_pause.wait(), 5)
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    # An Event.wait() made before the pause and never awaited would warn here; pytest turns
    # that warning into a failure (warnings are errors).
    gc.collect()
    assert loop.cancelled()
