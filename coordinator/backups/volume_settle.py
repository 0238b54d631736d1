"""Settling a volume restore whose link was lost while the agent replaced the volume: once the
agent is back, ask it how the replace ended (``volume_restore_settle``) and record that."""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Final

from coordinator.backups.runner import FINISH_TIMEOUT_SECONDS
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.hub.registry import Registry
from shared.errors import PlatformError, Unavailable
from shared.messages import REPLACE_UNKNOWN, BackupReply, VolumeRestoreSettle

logger = logging.getLogger(__name__)

UNCONFIRMED_CODE: Final = "replace-unconfirmed"
# How long the coordinator waits for the agent to come back and answer (then the restore
# stays ``replace-unconfirmed``: the agent still finishes the replace when it runs again).
SETTLE_WAIT_SECONDS: Final = 3600.0
# Between looks at the registry while the agent is away.
_RETRY_SECONDS: Final = 1.0


async def settle_replace(registry: Registry, backup_id: str, server_id: str) -> None:
    """Ask the agent of ``server_id``, once connected, how the replace of ``backup_id`` ended;
    turn the restore's ``replace-unconfirmed`` failure into ``ready``, or into the agent's
    failure (``replace-failed``). An agent that cannot say leaves it unconfirmed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_WAIT_SECONDS
    while loop.time() < deadline:
        session = registry.get(server_id)
        if session is None:
            await asyncio.sleep(_RETRY_SECONDS)
            continue
        try:
            reply = await session.request(
                lambda mid: VolumeRestoreSettle(id=mid, backup_id=backup_id),
                FINISH_TIMEOUT_SECONDS,
            )
        except Unavailable:
            # The old link, or the new one lost again: wait for the next.
            await asyncio.sleep(_RETRY_SECONDS)
            continue
        except PlatformError as exc:  # an agent before volume_restore_settle
            logger.info("restore %s stays unconfirmed: %s", backup_id, exc)
            return
        await _record(backup_id, reply)
        return
    logger.warning("restore %s stays unconfirmed: its agent did not come back", backup_id)


async def _record(backup_id: str, reply: object) -> None:
    unconfirmed = StorageVolumeBackup.filter(
        id=backup_id, restore_status="failed", restore_failure_code=UNCONFIRMED_CODE
    )
    if not isinstance(reply, BackupReply) or reply.message == REPLACE_UNKNOWN:
        logger.info("restore %s stays unconfirmed: its agent does not know it", backup_id)
        return
    if reply.status == "ok":
        await unconfirmed.update(
            restore_status="ready",
            restore_completed_at=datetime.now(UTC),
            restore_failed_at=None,
            restore_failure_code=None,
            restore_failure_message=None,
        )
        logger.info("restore %s confirmed by its agent after the lost link", backup_id)
        return
    await unconfirmed.update(
        restore_failure_code="replace-failed",
        restore_failure_message=(reply.message or "the agent reported a failure")[:2000],
    )
