"""The collector policy: survivors are frozen, frozen cycles are still freed on schedule."""

import asyncio
import gc
import sys
import time
import weakref
from collections.abc import Callable, Iterator

import pytest

from coordinator import heap


class _Node:
    """A reference cycle: the node refers to itself."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _released() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)  # poll interval; the deadline above bounds it
    return False


async def _stop(collector: asyncio.Task[None]) -> None:
    collector.cancel()
    with pytest.raises(asyncio.CancelledError):
        await collector


def _frozen_cycle() -> weakref.ref[_Node]:
    """A reference cycle that is garbage and frozen, as a tick of the collector leaves it."""
    node = _Node()
    alive = weakref.ref(node)
    gc.freeze()
    del node
    _ = gc.collect()
    assert alive() is not None  # frozen: the automatic collections never see it
    return alive


async def test_survivors_are_frozen_and_cancel_releases_them() -> None:
    assert gc.get_freeze_count() == 0
    collector = asyncio.create_task(heap.run_collector(freeze_seconds=0.01))
    assert await _until(lambda: gc.get_freeze_count() > 0)
    await _stop(collector)
    assert gc.get_freeze_count() == 0


async def test_frozen_cycles_are_freed_once_the_heap_grew_by_a_quarter() -> None:
    alive = _frozen_cycle()
    collector = asyncio.create_task(
        heap.run_collector(freeze_seconds=0.01, check_seconds=0.02, longest_seconds=3600)
    )
    try:
        # Several checks pass without growth: nothing is collected.
        assert not await _until(lambda: alive() is None, seconds=0.3)
        # Half as many new objects as the heap has blocks: it grows past a quarter.
        kept: list[list[int]] = [[] for _ in range(sys.getallocatedblocks() // 2)]
        assert await _until(lambda: alive() is None)
        assert kept
    finally:
        await _stop(collector)


async def test_frozen_cycles_are_freed_at_the_latest_after_the_longest_interval() -> None:
    alive = _frozen_cycle()
    collector = asyncio.create_task(
        heap.run_collector(freeze_seconds=0.01, check_seconds=0.02, longest_seconds=0.2)
    )
    try:
        assert await _until(lambda: alive() is None)
    finally:
        await _stop(collector)


async def test_a_fruitless_collection_makes_the_next_one_wait_for_more_growth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks = [1000]
    monkeypatch.setattr(sys, "getallocatedblocks", lambda: blocks[0])
    freed = [0]  # what the next full collection "finds"
    collections: list[int] = []

    def collect() -> int:
        collections.append(blocks[0])
        return freed[0]

    monkeypatch.setattr(heap, "collect_cycles", collect)
    collector = asyncio.create_task(
        heap.run_collector(freeze_seconds=0.01, check_seconds=0.02, longest_seconds=3600)
    )
    assert await _until(lambda: gc.get_freeze_count() > 0)  # it froze, then took its baseline
    try:
        blocks[0] = 1300  # grew by 30 %: past a quarter
        assert await _until(lambda: len(collections) == 1)
        blocks[0] = 2000  # 54 % more: it found nothing, so the next waits for four times that
        assert not await _until(lambda: len(collections) == 2, seconds=0.3)
        freed[0] = 100  # this one finds garbage (4 % of the heap)...
        blocks[0] = 2700  # 108 % more
        assert await _until(lambda: len(collections) == 2)
        blocks[0] = 3400  # ...so a quarter is enough again
        assert await _until(lambda: len(collections) == 3)
    finally:
        await _stop(collector)


def test_collect_cycles_reports_what_it_freed() -> None:
    node = _Node()
    gc.freeze()
    del node
    assert heap.collect_cycles() >= 1
    assert gc.get_freeze_count() == 0
