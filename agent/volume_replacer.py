"""Volume replaces as commitments: once the last byte of a restore is staged, the target volume
is replaced from the staging volume by a task the backups feature owns, not the link or the
request. A lost link does not cancel it; a record written before anything changes lets the
next start of the agent redo a replace the daemon's stop or death cut off (empty + copy is
idempotent), so the volume ends whole, never partly filled."""

import asyncio
import logging
from typing import Final

from agent.runtime import EngineError
from agent.runtime.volume_archive import VolumeArchiveOps, VolumeHelper, staging_volume
from agent.volume_intents import ReplaceIntent, ReplaceIntents

logger = logging.getLogger(__name__)

# Copying a large volume volume-to-volume on a slow disk takes long; only a stuck engine
# should end a replace.
REPLACE_TIMEOUT_SECONDS: Final = 6 * 3600.0
# Outcomes remembered for a coordinator that asks after a lost link (the newest ones).
_OUTCOMES_KEPT: Final = 256


class VolumeReplacer:
    """Runs replaces in tasks of its own; with ``intents``, each is recorded before it starts
    and redone by ``resume`` (without, as in unit tests, nothing survives the process)."""

    def __init__(self, volumes: VolumeArchiveOps, intents: ReplaceIntents | None) -> None:
        self._volumes = volumes
        self._intents = intents
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # How the replaces of this process ended ("" or the failure), for a coordinator that
        # lost the link meanwhile and asks (``settled``).
        self._outcomes: dict[str, str] = {}
        # Set once the records of an earlier run are taken over (a new restore of the same
        # backup waits for that, then is refused while its replace runs).
        self._resumed = asyncio.Event()
        if intents is None:
            self._resumed.set()

    async def busy(self, backup_id: str) -> bool:
        """Whether a replace of ``backup_id`` (its staging volume) is still running."""
        await self._resumed.wait()
        task = self._tasks.get(backup_id)
        return task is not None and not task.done()

    async def replace(self, backup_id: str, staged: VolumeHelper, volume: str) -> None:
        """Replace ``volume`` from the staged copy; a cancelled caller does not cancel it."""
        intent = ReplaceIntent(backup_id, volume, staging_volume(backup_id))
        task = self._start(intent, staged)
        await asyncio.shield(task)

    async def settled(self, backup_id: str) -> str | None:
        """How the replace of ``backup_id`` ended ("" when whole, else the failure), waiting for
        one still running; ``None`` when this process knows nothing of it."""
        await self._resumed.wait()
        task = self._tasks.get(backup_id)
        if task is not None:
            # Shielded: a request given up does not cancel the replace.
            await asyncio.wait({task})
        return self._outcomes.get(backup_id)

    def _start(self, intent: ReplaceIntent, staged: VolumeHelper) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._commit(intent, staged))
        self._tasks[intent.backup_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._tasks.get(intent.backup_id) is finished:
                del self._tasks[intent.backup_id]
            if not finished.cancelled() and (exc := finished.exception()) is not None:
                logger.warning("replace of volume %s failed: %s", intent.volume_name, exc)

        task.add_done_callback(done)
        return task

    async def _commit(self, intent: ReplaceIntent, staged: VolumeHelper) -> None:
        async def record(stopped: list[str], labels: dict[str, str]) -> None:
            intent.stopped, intent.labels = stopped, labels
            if self._intents is not None:
                await self._intents.save(intent)

        try:
            async with asyncio.timeout(REPLACE_TIMEOUT_SECONDS):
                await self._volumes.replace(
                    intent.backup_id,
                    staged,
                    intent.volume_name,
                    committed=record,
                    restart=list(intent.stopped),
                    labels=dict(intent.labels) or None,
                )
        except asyncio.CancelledError:
            # The daemon stops: the record and the staging volume stay for the next start.
            logger.warning("replace of volume %s left for the next start", intent.volume_name)
            raise
        except TimeoutError as exc:
            self._note(intent.backup_id, "the replace timed out")
            await self._forget(intent, staged)
            raise EngineError(
                f"replacing volume {intent.volume_name} took over {REPLACE_TIMEOUT_SECONDS:.0f} s"
            ) from exc
        except BaseException as exc:
            # The engine refused: reported failed, nothing is redone.
            self._note(intent.backup_id, str(exc)[:2000] or repr(exc))
            await self._forget(intent, staged)
            raise
        self._note(intent.backup_id, "")
        await self._forget(intent, staged)

    def _note(self, backup_id: str, outcome: str) -> None:
        self._outcomes.pop(backup_id, None)
        self._outcomes[backup_id] = outcome
        while len(self._outcomes) > _OUTCOMES_KEPT:
            del self._outcomes[next(iter(self._outcomes))]

    async def _forget(self, intent: ReplaceIntent, staged: VolumeHelper | None) -> None:
        # The record goes first: a record without its staging volume is only a warning later,
        # a staging volume without its record is never used again (and is removed below).
        if self._intents is not None:
            await self._intents.remove(intent.backup_id)
        await self._volumes.discard(intent.backup_id, staged)

    async def resume(self) -> None:
        """Redo every recorded replace (each in its own task, awaited here)."""
        started: list[asyncio.Task[None]] = []
        try:
            intents = await self._intents.load_all() if self._intents is not None else []
            for intent in intents:
                try:
                    staged = await self._volumes.restage(intent.backup_id)
                except EngineError as exc:
                    logger.error("restore %s not redone now: %s", intent.backup_id, exc)
                    continue
                if staged is None:
                    logger.warning(
                        "volume %s: the staging volume of restore %s is gone, nothing to redo",
                        intent.volume_name,
                        intent.backup_id,
                    )
                    await self._forget(intent, None)
                    await self._volumes.start(intent.stopped)
                    continue
                logger.info(
                    "volume %s: redoing the replace of restore %s",
                    intent.volume_name,
                    intent.backup_id,
                )
                started.append(self._start(intent, staged))
        finally:
            self._resumed.set()
        await asyncio.gather(*started, return_exceptions=True)

    async def close(self) -> None:
        """Cancel the replaces in flight (their records stay for the next start)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
