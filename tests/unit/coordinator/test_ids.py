"""Entity ids sort in creation order, also within one millisecond."""

import time

import pytest

from coordinator.ids import new_id


def test_ids_minted_in_one_millisecond_sort_in_creation_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_900_000_000.0)  # the clock stands still
    ids = [new_id("dep") for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("dep_") and len(i) == 30 for i in ids)
