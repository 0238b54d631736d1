"""Sample ids: unique, and ordered by the time they were made (the coordinator's index)."""

import time

import pytest

from shared.messages.monitoring import new_sample_id


def test_sample_ids_sort_by_creation_time_and_do_not_repeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids: list[str] = []
    for milliseconds in (1_700_000_000_000, 1_700_000_000_001, 1_700_000_060_000):
        monkeypatch.setattr(time, "time_ns", lambda ms=milliseconds: ms * 1_000_000)
        ids.extend(new_sample_id() for _ in range(100))
    assert len(set(ids)) == len(ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)
    assert ids[0][:12] < ids[100][:12] < ids[200][:12]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
