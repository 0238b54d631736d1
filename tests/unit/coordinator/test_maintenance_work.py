"""Maintenance runs in the operator work ledger: each archive-pruning run is recorded
(succeeded or failed), shown to ``*`` tokens only, settled and pruned through the ledger."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coordinator import archive_prune
from coordinator.db.notification_models import MaintenanceRun
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.support import assert_error
from tests.unit.coordinator.test_projects_api import scoped_token


async def _runs(interval_task: asyncio.Task[None], status: str) -> None:
    async def recorded() -> bool:
        return await MaintenanceRun.filter(status=status).exists()

    try:
        await eventually(recorded, what=f"a {status} pruning run")
    finally:
        interval_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await interval_task


async def test_archive_pruning_runs_are_listed_settled_and_pruned(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grace = timedelta(hours=1)
    await _runs(asyncio.create_task(archive_prune.run_pruning(tmp_path, 0.01, grace)), "succeeded")

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("disk went away")

    monkeypatch.setattr(archive_prune, "prune_archives", broken)
    await _runs(asyncio.create_task(archive_prune.run_pruning(tmp_path, 0.01, grace)), "failed")

    async def ledger(token: str, **query: str) -> Any:
        path = "/operator-work?" + "&".join(f"{k}={v}" for k, v in query.items())
        status, body, _ = await coordinator.call("GET", path, token=token)
        assert status == 200, body
        return body

    listed = await ledger(admin_token, kind="runtime-maintenance")
    statuses = {i["status"] for i in listed["items"]}
    assert statuses == {"succeeded", "failed"}
    ok = next(i for i in listed["items"] if i["status"] == "succeeded")
    assert ok["operationKey"] == "source-archive-prune"
    assert ok["safeDetails"]["prunedArchiveCount"] == "0"
    failed = next(i for i in listed["items"] if i["status"] == "failed")
    assert (failed["errorCode"], failed["nextActions"]) == (
        "OSError",
        ["diagnostic", "dead-letter", "mark-recovered"],
    )
    # Coordinator-wide runs are for '*' tokens only.
    reader = await scoped_token(coordinator, admin_token, ["operator-work:read"])
    assert (await ledger(reader, kind="runtime-maintenance"))["items"] == []
    assert_error(
        await coordinator.call("GET", f"/operator-work/{failed['id']}", token=reader),
        404,
        "not_found",
    )
    for action in ("cancel", "retry"):
        assert_error(
            await coordinator.call(
                "POST", f"/operator-work/{ok['id']}/{action}", token=admin_token, json={}
            ),
            409,
            "conflict",
        )
    status, recovered, _ = await coordinator.call(
        "POST", f"/operator-work/{failed['id']}/mark-recovered", token=admin_token, json={}
    )
    assert (status, recovered["status"]) == (200, "succeeded")
    before = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    total = await MaintenanceRun.all().count()
    status, dry, _ = await coordinator.call(
        "POST", "/operator-work/prune", token=admin_token, json={"before": before, "dryRun": True}
    )
    assert (status, dry["matchedCount"], dry["prunedCount"]) == (200, total, 0)
    status, real, _ = await coordinator.call(
        "POST", "/operator-work/prune", token=admin_token, json={"before": before}
    )
    assert (real["matchedCount"], real["prunedCount"]) == (total, total)
    assert await MaintenanceRun.all().count() == 0
