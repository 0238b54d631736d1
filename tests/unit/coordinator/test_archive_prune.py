"""Pruning of unreferenced source archives: what goes, what stays, and the background loop."""

import asyncio
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coordinator import archive_prune, archives
from coordinator.db import models
from tests.harness import Coordinator, eventually, serving
from tests.unit.coordinator.support import audit_events
from tests.unit.coordinator.test_resources_api import create_resource, show, workspace
from tests.unit.coordinator.test_source_archives import folder, make_tar, stored_files, upload

GRACE = timedelta(hours=1)


async def uploaded(coordinator: Coordinator, token: str, resource_id: str, name: str) -> str:
    status, body, _ = await upload(coordinator, token, resource_id, make_tar((name, b"x", {})))
    assert status == 201, body
    return str(body["id"])


async def deployed_from(archive_id: str) -> None:
    """A deployment row whose artifact names ``archive_id`` (as the planner writes it)."""
    archive = await models.SourceArchive.get(id=archive_id)
    project_id, environment_id = (
        await models.Resource.filter(id=archive.resource_id)
        .get()
        .values_list("project_id", "environment_id")
    )
    _ = await models.Deployment.create(
        id=f"dep_{archive_id[-12:]}",
        organization_id=archive.organization_id,
        project_id=project_id,
        environment_id=environment_id,
        resource_id=archive.resource_id,
        server_id="srv_gone",
        status="succeeded",
        artifact={"kind": "archive", "archiveId": archive_id, "sha256": archive.sha256},
        created_at=datetime.now(UTC),
    )


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look last written ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


async def test_only_unreferenced_archives_past_the_grace_are_pruned(
    coordinator: Coordinator, admin_token: str
) -> None:
    data_dir = coordinator.settings().data_dir
    project_id, environment_id = await workspace(coordinator, admin_token)
    rid = await create_resource(coordinator, admin_token, project_id, environment_id)
    replaced = await uploaded(coordinator, admin_token, rid, "one")
    deployed = await uploaded(coordinator, admin_token, rid, "two")
    await deployed_from(deployed)
    token = await archives.mint_download_token(replaced, "srv_1", "dep_1")
    current = await uploaded(coordinator, admin_token, rid, "three")
    directory = archives.archive_dir(data_dir)
    stray = directory / "arc_straystraystray.tar.gz"
    partial = directory / ".upload-0123456789abcdef.part"
    fresh = directory / ".upload-fedcba9876543210.part"
    for path in (stray, partial, fresh):
        path.write_bytes(b"left over")
    age(stray, 2 * GRACE.total_seconds())
    age(partial, 2 * GRACE.total_seconds())

    # Within the grace period nothing goes (an upload's row may not exist yet, and a source may
    # be pointed back at a recent archive).
    outcome = await archive_prune.prune_archives(data_dir, GRACE)
    assert outcome.archive_ids == []
    # Old files no row accounts for go: a crashed upload's archive and partial file.
    assert sorted(outcome.stray_files) == sorted([stray.name, partial.name])
    assert await models.SourceArchive.filter(resource_id=rid).count() == 3
    assert fresh.exists()

    later = datetime.now(UTC) + GRACE + timedelta(seconds=1)
    outcome = await archive_prune.prune_archives(data_dir, GRACE, now=later)
    assert outcome.archive_ids == [replaced]
    assert not await models.SourceArchive.exists(id=replaced)
    assert not await models.ArchiveDownloadToken.exists(archive_id=replaced)
    assert not archives.archive_path(data_dir, replaced).exists()
    with pytest.raises(Exception, match="not valid"):
        _ = await archives.redeem_download_token(token, replaced)
    # Still named by a deployment (a rollback may rebuild from it) or by the current source.
    for kept in (deployed, current):
        assert await models.SourceArchive.exists(id=kept)
        assert archives.archive_path(data_dir, kept).exists()
    assert (await show(coordinator, admin_token, rid))["source"]["metadata"] == {
        "archiveId": current
    }
    [event] = await audit_events(coordinator, admin_token, eventType=archive_prune.EVENT_TYPE)
    assert event["aggregateId"] == rid
    assert event["actorKind"] == "system"
    assert event["payload"]["archiveId"] == replaced
    assert event["payload"]["reason"] == "unreferenced"

    # A second run finds nothing more to do.
    outcome = await archive_prune.prune_archives(data_dir, GRACE, now=later)
    assert outcome.archive_ids == []
    # (An hour on, the partial upload that was fresh is abandoned too.)
    assert sorted(stored_files(coordinator)) == sorted([f"{deployed}.tar.gz", f"{current}.tar.gz"])


async def test_a_source_pointed_back_at_an_old_archive_keeps_it(
    coordinator: Coordinator, admin_token: str
) -> None:
    data_dir = coordinator.settings().data_dir
    project_id, environment_id = await workspace(coordinator, admin_token)
    rid = await create_resource(coordinator, admin_token, project_id, environment_id)
    first = await uploaded(coordinator, admin_token, rid, "one")
    second = await uploaded(coordinator, admin_token, rid, "two")
    status, answer, _ = await coordinator.call(
        "POST",
        f"/resources/{rid}/source",
        token=admin_token,
        json={"source": {"kind": "local-folder", "locator": ".", "metadata": {"archiveId": first}}},
    )
    assert status == 200, answer
    later = datetime.now(UTC) + GRACE + timedelta(seconds=1)
    outcome = await archive_prune.prune_archives(data_dir, GRACE, now=later)
    assert outcome.archive_ids == [second]
    assert await models.SourceArchive.exists(id=first)


@pytest.fixture
async def pruning_coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """A coordinator whose pruning loop runs every 0.1 s with a one-second grace."""
    async with serving(
        tmp_path / "pruning",
        database_url,
        archive_prune_interval_seconds=0.1,
        archive_prune_grace_seconds=1.0,
    ) as harness:
        yield harness


async def test_the_background_loop_prunes_a_replaced_archive(
    pruning_coordinator: Coordinator,
) -> None:
    coordinator = pruning_coordinator
    token = await coordinator.bootstrap()
    project_id, environment_id = await workspace(coordinator, token)
    rid = await create_resource(coordinator, token, project_id, environment_id)
    status, first, _ = await upload(coordinator, token, rid, folder())
    assert status == 201, first
    current = await uploaded(coordinator, token, rid, "two")

    # The row goes first (with its audit event), the file right after the commit.
    async def pruned() -> bool:
        return stored_files(coordinator) == [f"{current}.tar.gz"]

    await eventually(pruned, what="the replaced archive to be pruned")
    assert not await models.SourceArchive.exists(id=first["id"])
    [event] = await audit_events(coordinator, token, eventType=archive_prune.EVENT_TYPE)
    assert event["payload"]["archiveId"] == first["id"]
    # The current archive outlives a run long past its grace (a day later, not a wait).
    later = datetime.now(UTC) + timedelta(days=1)
    await archive_prune.prune_archives(coordinator.settings().data_dir, GRACE, now=later)
    assert await models.SourceArchive.exists(id=current)
    assert stored_files(coordinator) == [f"{current}.tar.gz"]


async def test_canceling_the_loop_mid_run_leaves_the_data_consistent(
    coordinator: Coordinator, admin_token: str
) -> None:
    data_dir = coordinator.settings().data_dir
    project_id, environment_id = await workspace(coordinator, admin_token)
    rid = await create_resource(coordinator, admin_token, project_id, environment_id)
    replaced = await uploaded(coordinator, admin_token, rid, "one")
    _ = await uploaded(coordinator, admin_token, rid, "two")
    runs = 0

    def clock() -> datetime:
        nonlocal runs
        runs += 1
        return datetime.now(UTC) + GRACE + timedelta(seconds=1)

    task = asyncio.create_task(archive_prune.run_pruning(data_dir, 0.01, GRACE, clock))

    async def gone() -> bool:
        return not await models.SourceArchive.exists(id=replaced)

    await eventually(gone, what="the replaced archive's row to be pruned")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runs >= 1
    # Whatever point the cancel hit, no row is left without its file.
    for row in await models.SourceArchive.filter(resource_id=rid):
        assert archives.archive_path(data_dir, row.id).exists()
