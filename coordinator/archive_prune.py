"""Pruning of uploaded source archives that no resource or deployment references any more.

The app owns one background loop (``prune_job``, a cleanup context started after the
database's, so it is canceled before the database closes). Every interval it removes archives
older than the grace period that neither their resource's source nor any of its deployments'
artifacts names: the row, its download tokens and one ``resource.source-archive-pruned`` audit
event in one transaction per resource, then the file. It also removes files under
``DATA_DIR/archives`` that have no row (an upload interrupted by a crash) once they are older
than the grace period.

The grace period is what makes this safe next to uploads: an upload's file lands before its row
is written, and a resource's source may be pointed back at one of its recent earlier archives.
Canceling the loop mid-run rolls back the open transaction; a file whose row is already gone
is removed by the next run's sweep.
"""

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from aiohttp import web
from tortoise.transactions import in_transaction

from coordinator import archives, audit, work_runs
from coordinator.appkeys import SETTINGS_KEY
from coordinator.db import models

logger = logging.getLogger(__name__)

EVENT_TYPE: Final = "resource.source-archive-pruned"
_ARCHIVE_SUFFIX: Final = ".tar.gz"
_PARTIAL_PREFIX: Final = ".upload-"
# Stray files are looked up in the database this many at a time.
_BATCH: Final = 500

Clock = Callable[[], datetime]


@dataclass
class PruneOutcome:
    """What one run removed."""

    archive_ids: list[str] = field(default_factory=list)
    stray_files: list[str] = field(default_factory=list)


def _archive_id(holder: object, key: str) -> str | None:
    """``holder[key]["archiveId"]`` (``key`` empty: ``holder["archiveId"]``), if a string."""
    if not isinstance(holder, dict):
        return None
    inner = holder.get(key) if key else holder
    value = inner.get("archiveId") if isinstance(inner, dict) else None
    return value if isinstance(value, str) else None


async def _referenced(resource_id: str) -> set[str]:
    """Archive ids the resource's source or any of its deployments' artifacts name."""
    found: set[str] = set()
    source = await models.Resource.filter(id=resource_id).values_list("source", flat=True)
    for value in source:
        if archive_id := _archive_id(value, "metadata"):
            found.add(archive_id)
    artifacts = await models.Deployment.filter(
        resource_id=resource_id, artifact__not_isnull=True
    ).values_list("artifact", flat=True)
    for artifact in artifacts:
        if archive_id := _archive_id(artifact, ""):
            found.add(archive_id)
    return found


async def _prune_resource(resource_id: str, cutoff: datetime) -> list[str]:
    """Remove the resource's unreferenced archives older than ``cutoff``; return their ids."""
    async with in_transaction():
        # Decided inside the transaction, so a source or deployment that picked an archive up
        # a moment ago is seen.
        keep = await _referenced(resource_id)
        doomed = [
            row
            for row in await models.SourceArchive.filter(
                resource_id=resource_id, created_at__lt=cutoff
            )
            if row.id not in keep
        ]
        if not doomed:
            return []
        ids = [row.id for row in doomed]
        await models.ArchiveDownloadToken.filter(archive_id__in=ids).delete()
        await models.SourceArchive.filter(id__in=ids).delete()
        for row in doomed:
            await audit.record(
                actor=None,
                event_type=EVENT_TYPE,
                aggregate_type="resource",
                aggregate_id=resource_id,
                organization_id=row.organization_id,
                payload={
                    "archiveId": row.id,
                    "sha256": row.sha256,
                    "sizeBytes": row.size_bytes,
                    "uploadedAt": row.created_at.isoformat(),
                    "reason": "unreferenced",
                },
            )
    return ids


def _old_files(directory: Path, cutoff: datetime) -> list[Path]:
    """Archive and partial-upload files last written before ``cutoff``."""
    if not directory.is_dir():
        return []
    limit = cutoff.timestamp()
    old: list[Path] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            named = entry.name.endswith(_ARCHIVE_SUFFIX) or entry.name.startswith(_PARTIAL_PREFIX)
            if (
                named
                and entry.is_file(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_mtime < limit
            ):
                old.append(Path(entry.path))
    return old


async def _sweep_strays(data_dir: Path, cutoff: datetime) -> list[str]:
    """Remove old files under the archive directory that no row accounts for."""
    candidates = await asyncio.to_thread(_old_files, archives.archive_dir(data_dir), cutoff)
    removed: list[str] = []
    for start in range(0, len(candidates), _BATCH):
        batch = candidates[start : start + _BATCH]
        ids = [p.name.removesuffix(_ARCHIVE_SUFFIX) for p in batch]
        rows = await models.SourceArchive.filter(id__in=ids).values_list("id", flat=True)
        known = {str(row) for row in rows}
        for path, archive_id in zip(batch, ids, strict=True):
            if path.name.startswith(_PARTIAL_PREFIX) or archive_id not in known:
                await asyncio.to_thread(path.unlink, missing_ok=True)
                removed.append(path.name)
    return removed


async def prune_archives(
    data_dir: Path, grace: timedelta, now: datetime | None = None
) -> PruneOutcome:
    """One pruning run; ``now`` (default: the wall clock) decides what is past the grace."""
    cutoff = (now or datetime.now(UTC)) - grace
    outcome = PruneOutcome()
    resource_ids = await (
        models.SourceArchive.filter(created_at__lt=cutoff)
        .distinct()
        .values_list("resource_id", flat=True)
    )
    for resource_id in resource_ids:
        ids = await _prune_resource(str(resource_id), cutoff)
        outcome.archive_ids.extend(ids)
        await archives.remove_files(data_dir, ids)
    outcome.stray_files = await _sweep_strays(data_dir, cutoff)
    return outcome


async def run_pruning(
    data_dir: Path, interval: float, grace: timedelta, clock: Clock | None = None
) -> None:
    """Prune every ``interval`` seconds until canceled (a failed run is logged and retried)."""
    while True:
        await asyncio.sleep(interval)
        try:
            # Each run is listed in the operator work ledger (coordinator/work_runs.py).
            async with work_runs.recorded("source-archive-prune") as run:
                outcome = await prune_archives(data_dir, grace, clock() if clock else None)
                run.details.update(
                    prunedArchiveCount=str(len(outcome.archive_ids)),
                    strayFileCount=str(len(outcome.stray_files)),
                )
        except Exception:
            logger.exception("pruning unreferenced source archives failed")
            continue
        if outcome.archive_ids or outcome.stray_files:
            logger.info(
                "pruned %d unreferenced source archives and %d stray archive files",
                len(outcome.archive_ids),
                len(outcome.stray_files),
            )


async def prune_job(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the pruning loop runs while the app does."""
    settings = app[SETTINGS_KEY]
    grace = timedelta(seconds=settings.archive_prune_grace_seconds)
    async with asyncio.TaskGroup() as tasks:
        loop = tasks.create_task(
            run_pruning(settings.data_dir, settings.archive_prune_interval_seconds, grace)
        )
        try:
            yield
        finally:
            loop.cancel()


__all__ = ["EVENT_TYPE", "PruneOutcome", "prune_archives", "prune_job", "run_pruning"]
