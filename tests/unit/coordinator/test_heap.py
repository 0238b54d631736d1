"""The collector policy: survivors are frozen, frozen cycles are still freed on schedule."""

import asyncio
import gc
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
        await asyncio.sleep(0.01)
    return False


async def test_survivors_are_frozen_and_cancel_releases_them() -> None:
    assert gc.get_freeze_count() == 0
    collector = asyncio.create_task(heap.run_collector(freeze_seconds=0.01, collect_seconds=60))
    assert await _until(lambda: gc.get_freeze_count() > 0)
    collector.cancel()
    with pytest.raises(asyncio.CancelledError):
        await collector
    assert gc.get_freeze_count() == 0


async def test_a_frozen_cycle_is_freed_by_the_scheduled_collection() -> None:
    node = _Node()
    alive = weakref.ref(node)
    gc.freeze()  # what a tick of the collector does with everything alive
    del node
    _ = gc.collect()
    assert alive() is not None  # frozen: the automatic collections never see it
    collector = asyncio.create_task(heap.run_collector(freeze_seconds=0.01, collect_seconds=0.2))
    try:
        assert await _until(lambda: alive() is None)
    finally:
        collector.cancel()
        with pytest.raises(asyncio.CancelledError):
            await collector


def test_collect_cycles_reports_what_it_freed() -> None:
    node = _Node()
    gc.freeze()
    del node
    assert heap.collect_cycles() >= 1
    assert gc.get_freeze_count() == 0
