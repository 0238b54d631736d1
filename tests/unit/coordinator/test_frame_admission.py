"""Agent frame admission: at most ``per_turn`` frames per event-loop turn, in order, none lost."""

import asyncio
from collections import Counter

import pytest

from coordinator.hub.admission import FrameAdmission


class TurnCounter:
    """Counts event-loop turns: a callback that re-schedules itself once per turn."""

    def __init__(self) -> None:
        self.turn = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.turn += 1
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


async def test_frames_are_spread_over_turns_in_arrival_order() -> None:
    admission = FrameAdmission(per_turn=3)
    turns = TurnCounter()
    admitted: list[tuple[int, int]] = []

    async def frame(index: int) -> None:
        await admission.admit()
        admitted.append((index, turns.turn))

    await asyncio.gather(*(frame(i) for i in range(10)))
    turns.stop()
    assert [index for index, _ in admitted] == list(range(10))
    per_turn = Counter(turn for _, turn in admitted)
    assert max(per_turn.values()) <= 3
    assert len(per_turn) >= 4  # ten frames, three a turn
    assert admission.waited == 7


async def test_a_canceled_waiter_gives_its_place_to_the_next() -> None:
    admission = FrameAdmission(per_turn=1)
    turns = TurnCounter()
    await admission.admit()  # this turn's only admission
    tasks = [asyncio.create_task(admission.admit()) for _ in range(3)]
    await asyncio.sleep(0)  # next turn: the first is admitted, the other two wait
    assert tasks[0].done()
    assert not tasks[1].done()
    assert not tasks[2].done()
    tasks[1].cancel()
    turn = turns.turn
    async with asyncio.timeout(5):
        await tasks[2]
    assert turns.turn - turn <= 3  # the canceled waiter did not take a turn's place
    assert tasks[1].cancelled()
    turns.stop()


async def test_without_contention_admission_does_not_wait() -> None:
    admission = FrameAdmission(per_turn=4)
    for _ in range(3):
        await admission.admit()
        await asyncio.sleep(0)  # a new turn refills the budget
    assert admission.waited == 0
    with pytest.raises(ValueError, match="at least 1"):
        FrameAdmission(per_turn=0)
