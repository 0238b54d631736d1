"""``volume_cleanup`` on the agent: only this storage volume's Berth volumes, ``before``, in use."""

from datetime import UTC, datetime

from agent.volume_feature import clean
from shared.messages import VolumeCleanup
from tests.fakes.runtime import FakeRuntime

MANAGED = {"berth.managed": "true"}


async def test_cleanup_matches_skips_removes_and_reports_volumes_in_use() -> None:
    runtime = FakeRuntime()
    runtime.volume_labels = {
        "berth-old": {**MANAGED, "berth.storage-volume-id": "svol_1"},
        "berth-new": {**MANAGED, "berth.storage-volume-id": "svol_1"},
        "berth-busy": {**MANAGED, "berth.storage-volume-id": "svol_1"},
        "berth-other": {**MANAGED, "berth.storage-volume-id": "svol_2"},
        "someones": {"berth.storage-volume-id": "svol_1"},
    }
    runtime.volume_created = {
        "berth-old": "2026-01-01T00:00:00Z",
        "berth-busy": "2026-01-02T00:00:00Z",
        "berth-new": "2026-06-01T00:00:00Z",
    }
    runtime.volumes_in_use = {"berth-busy"}
    before = datetime(2026, 3, 1, tzinfo=UTC)

    dry = await clean(runtime, VolumeCleanup(id=7, volume_id="svol_1", before=before))
    assert dry.re == 7
    assert (dry.dry_run, dry.inspected_count) == (True, 3)
    assert [(c.name, c.action) for c in dry.candidates] == [
        ("berth-busy", "matched"),
        ("berth-new", "skipped"),
        ("berth-old", "matched"),
    ]
    assert runtime.calls == []

    done = await clean(
        runtime, VolumeCleanup(id=8, volume_id="svol_1", before=before, dry_run=False)
    )
    assert [(c.name, c.action, c.blocked_reason) for c in done.candidates] == [
        ("berth-busy", "blocked", "in-use"),
        ("berth-new", "skipped", None),
        ("berth-old", "removed", None),
    ]
    assert sorted(runtime.volume_labels) == ["berth-busy", "berth-new", "berth-other", "someones"]
