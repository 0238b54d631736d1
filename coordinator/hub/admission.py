"""Admission of agent frames: a bounded number per turn of the event loop.

Thousands of agents each sending a frame a second keep the event loop busy. Every turn of the
loop runs all callbacks that became ready, so without a bound one turn handles every frame
that arrived meanwhile, and an API request (which needs a turn per database round trip) waits
for all of them, several times over. Admitting at most ``per_turn`` frames per turn leaves the
rest in the socket buffers for the next turns, so a request's turn comes quickly while the
same total work still gets done. Frames are admitted in arrival order of their waiters.
"""

import asyncio
from collections import deque
from typing import Final

DEFAULT_PER_TURN: Final = 48


class FrameAdmission:
    """Hands out ``per_turn`` admissions per event-loop turn; the rest wait their turn."""

    def __init__(self, per_turn: int = DEFAULT_PER_TURN) -> None:
        if per_turn < 1:
            raise ValueError("per_turn must be at least 1")
        self.per_turn = per_turn
        self._left = per_turn
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._refill_scheduled = False
        self.waited = 0  # admissions that had to wait for a later turn (for diagnostics)

    async def admit(self) -> None:
        """Return at once while this turn has room, else after a later turn admits us."""
        if self._left > 0 and not self._waiters:
            self._left -= 1
            self._schedule_refill()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.waited += 1
        self._schedule_refill()
        await waiter

    def _schedule_refill(self) -> None:
        # call_soon from inside a turn runs at the start of the next turn: one refill a turn.
        if not self._refill_scheduled:
            self._refill_scheduled = True
            asyncio.get_running_loop().call_soon(self._refill)

    def _refill(self) -> None:
        self._refill_scheduled = False
        self._left = self.per_turn
        while self._left > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a canceled waiter gives its place to the next
                waiter.set_result(None)
                self._left -= 1
        if self._waiters:
            self._schedule_refill()
