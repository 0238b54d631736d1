"""Retention: raw samples past the raw window (once rolled up) and rollups past theirs go."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db.monitoring_models import RuntimeSample, SampleRollup
from coordinator.monitoring.rollups import watermark
from coordinator.settings import Settings

logger = logging.getLogger(__name__)

RETENTION_INTERVAL_SECONDS: Final = 600.0


@dataclass(frozen=True)
class PruneOutcome:
    """What a prune matched and removed."""

    dry_run: bool
    before: datetime
    rollups_before: datetime
    matched_samples: int
    pruned_samples: int
    matched_rollups: int
    pruned_rollups: int
    pruned_at: datetime


def raw_cutoff(settings: Settings, now: datetime | None = None) -> datetime:
    """Raw samples observed before this are outside the raw retention window."""
    return (now or datetime.now(UTC)) - timedelta(hours=settings.raw_sample_retention_hours)


def rollup_cutoff(settings: Settings, now: datetime | None = None) -> datetime:
    """Rollup buckets starting before this are outside the rollup retention window."""
    return (now or datetime.now(UTC)) - timedelta(days=settings.rollup_retention_days)


async def prune(
    settings: Settings, *, dry_run: bool, before: datetime | None = None
) -> PruneOutcome:
    """Delete (or with ``dry_run`` only count) expired raw samples and rollups.

    Raw samples not yet folded into rollups (id above the watermark) are kept whatever their
    age: deleting them would lose them from every rollup.
    """
    now = datetime.now(UTC)
    raw_before = before or raw_cutoff(settings, now)
    rollups_before = rollup_cutoff(settings, now)
    async with in_transaction():
        rolled_up_to = await watermark()
        samples = RuntimeSample.filter(observed_at__lt=raw_before, id__lte=rolled_up_to)
        rollups = SampleRollup.filter(bucket_start__lt=rollups_before)
        matched_samples = await samples.count()
        matched_rollups = await rollups.count()
        pruned_samples = pruned_rollups = 0
        if not dry_run:
            pruned_samples = await samples.delete()
            pruned_rollups = await rollups.delete()
    return PruneOutcome(
        dry_run=dry_run,
        before=raw_before,
        rollups_before=rollups_before,
        matched_samples=matched_samples,
        pruned_samples=pruned_samples,
        matched_rollups=matched_rollups,
        pruned_rollups=pruned_rollups,
        pruned_at=now,
    )


async def prune_audited(
    settings: Settings,
    actor: Principal,
    request_id: str,
    *,
    dry_run: bool,
    before: datetime | None = None,
) -> PruneOutcome:
    """An on-demand prune; a real one is audited in the same transaction as the deletes."""
    async with in_transaction():
        outcome = await prune(settings, dry_run=dry_run, before=before)
        if not dry_run:
            await audit.record(
                actor=actor,
                event_type="runtime-monitoring.pruned",
                aggregate_type="runtime-monitoring",
                aggregate_id=None,
                payload={
                    "before": outcome.before.isoformat(),
                    "rollupsBefore": outcome.rollups_before.isoformat(),
                    "prunedSampleCount": outcome.pruned_samples,
                    "prunedRollupCount": outcome.pruned_rollups,
                },
                request_id=request_id,
            )
    return outcome


PruneListener = Callable[[PruneOutcome], None]


async def run_retention(
    settings: Settings,
    on_pruned: PruneListener | None = None,
    interval: float = RETENTION_INTERVAL_SECONDS,
) -> None:
    """Prune every ``interval`` seconds until canceled (errors are logged and retried).

    ``on_pruned`` hears of each committed prune (read caches drop what it deleted).
    """
    while True:
        await asyncio.sleep(interval)
        try:
            outcome = await prune(settings, dry_run=False)
            if on_pruned is not None:
                on_pruned(outcome)
            if outcome.pruned_samples or outcome.pruned_rollups:
                logger.info(
                    "retention pruned %d raw samples and %d rollups",
                    outcome.pruned_samples,
                    outcome.pruned_rollups,
                )
        except Exception:
            logger.exception("pruning monitoring data failed")


async def retention_job(
    settings: Settings, on_pruned: PruneListener | None = None
) -> AsyncIterator[None]:
    """Run the retention loop for the duration of the block."""
    async with asyncio.TaskGroup() as tasks:
        loop = tasks.create_task(run_retention(settings, on_pruned))
        try:
            yield
        finally:
            loop.cancel()
