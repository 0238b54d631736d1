"""Running storage-volume backups and restores: pull a volume's tar archive from its agent chunk
by chunk into an encrypted artifact (the same format, key and directory as database backups),
or push one back into the volume or into a new volume.

A backup is ``ready`` only once its artifact was completely written, fsynced and renamed into
place; a restore replaces the volume's contents only after every record decrypted and the
checksum matched (the agent stages the stream in a volume of its own until then).
"""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Final

from coordinator.backups.runner import (
    CHUNK_TIMEOUT_SECONDS,
    FINISH_TIMEOUT_SECONDS,
    BackupRunner,
    failure_code,
)
from coordinator.backups.volume_settle import UNCONFIRMED_CODE, settle_replace
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.hub.session import AgentSession
from coordinator.volumes.paths import docker_volume_name
from shared.errors import PlatformError, Unavailable
from shared.messages import (
    BackupReply,
    RestoreFinish,
    VolumeBackupOpen,
    VolumeManifest,
    VolumeRestoreOpen,
)

logger = logging.getLogger(__name__)


# The reason of a restore whose link was lost after the last byte: the agent had every byte
# and a matching checksum, so it finishes the replace on its own.
UNCONFIRMED_MESSAGE: Final = (
    "the agent's link was lost after every byte arrived and the checksum matched: the agent"
    " finishes replacing the volume from its staged copy on its own (at once, or when it"
    " starts again), so the volume ends whole with this backup's files; the restore is marked"
    " ready once the agent, back on a link, confirms it"
)


class ReplaceUnconfirmed(Unavailable):
    """The link was lost while the agent replaced the volume (``replace-unconfirmed``)."""


def _now() -> datetime:
    return datetime.now(UTC)


class VolumeBackupRunner:
    """Volume transfers in the background, on the database backups' runner (key, storage)."""

    def __init__(self, runner: BackupRunner) -> None:
        self.runner = runner

    def start_backup(self, backup_id: str) -> None:
        """Take the volume backup in the background."""
        self.runner.spawn(self.backup(backup_id))

    def start_restore(self, backup_id: str, volume_id: str) -> None:
        """Restore in the background into storage volume ``volume_id``."""
        self.runner.spawn(self.restore(backup_id, volume_id))

    async def fail_interrupted(self) -> None:
        """Fail volume backups and restores a previous run left unfinished."""
        now = _now()
        for backup_id in await StorageVolumeBackup.filter(status="pending").values_list(
            "id", flat=True
        ):
            self.runner.artifact_path(str(backup_id)).with_suffix(".berthbk.partial").unlink(
                missing_ok=True
            )
        reason = "the coordinator restarted during the transfer"
        await StorageVolumeBackup.filter(status="pending").update(
            status="failed", failed_at=now, failure_code="interrupted", failure_message=reason
        )
        await StorageVolumeBackup.filter(restore_status="pending").update(
            restore_status="failed",
            restore_failed_at=now,
            restore_failure_code="interrupted",
            restore_failure_message=reason,
        )
        await StorageVolumeBackup.filter(verification_status="pending").update(
            verification_status="failed", verified_at=now, verification_message=reason
        )

    async def backup(self, backup_id: str) -> None:
        """Pull the volume's archive into a new encrypted artifact."""
        row = await StorageVolumeBackup.get(id=backup_id)
        runner = self.runner
        session: AgentSession | None = None
        volume = docker_volume_name(row.storage_volume_id)
        counted: list[VolumeManifest] = []

        def keep_manifest(reply: BackupReply) -> None:
            if reply.manifest is not None:
                counted.append(reply.manifest)

        try:
            store = await runner.store(row.backup_target_id)
            session = runner.registry.require(row.server_id)
            sink, sha256 = await runner.pull(
                session,
                backup_id,
                store,
                lambda mid: VolumeBackupOpen(
                    id=mid,
                    backup_id=backup_id,
                    volume_name=volume,
                    stop_containers=row.stop_resource,
                ),
                on_eof=keep_manifest,
            )
        except asyncio.CancelledError:
            raise
        except (PlatformError, OSError, ValueError) as exc:
            await runner.abort(session, backup_id)
            code = str(exc.code) if isinstance(exc, PlatformError) else "artifact-write-failed"
            logger.warning("volume backup %s failed: %s", backup_id, exc)
            await StorageVolumeBackup.filter(id=backup_id).update(
                status="failed",
                failed_at=_now(),
                failure_code=code[:64],
                failure_message=str(exc)[:2000],
            )
            return
        await StorageVolumeBackup.filter(id=backup_id).update(
            status="ready",
            completed_at=_now(),
            artifact_handle=store.handle(backup_id),
            size_bytes=sink.size,
            plain_bytes=sink.plain_bytes,
            sha256=sha256,
            **manifest_columns(counted[0] if counted else None),
        )

    async def _push(self, session: AgentSession, row: StorageVolumeBackup, volume: str) -> None:
        runner = self.runner
        await runner.ask(
            session,
            lambda mid: VolumeRestoreOpen(
                id=mid, backup_id=row.id, volume_name=volume, size=row.plain_bytes or 0
            ),
            CHUNK_TIMEOUT_SECONDS,
        )
        store = await runner.store(row.backup_target_id)
        await runner.send(session, row.id, row.id, row.sha256 or "", store)
        # Every record decrypted and the checksum matched: only now is the volume replaced.
        try:
            await runner.ask(
                session,
                lambda mid: RestoreFinish(id=mid, backup_id=row.id),
                FINISH_TIMEOUT_SECONDS,
            )
        except Unavailable as exc:
            # The agent replaces the volume from its staged copy whatever happens to the link
            # (and redoes it when it starts again), but it could not say how that ended.
            raise ReplaceUnconfirmed(UNCONFIRMED_MESSAGE) from exc

    async def restore(self, backup_id: str, volume_id: str) -> None:
        """Push the artifact into storage volume ``volume_id`` on the backup's server."""
        row = await StorageVolumeBackup.get(id=backup_id)
        session: AgentSession | None = None
        try:
            session = self.runner.registry.require(row.server_id)
            await self._push(session, row, docker_volume_name(volume_id))
        except asyncio.CancelledError:
            raise
        except (PlatformError, OSError) as exc:
            if not isinstance(exc, ReplaceUnconfirmed):
                await self.runner.abort(session, backup_id)
            logger.warning("restore of volume backup %s failed: %s", backup_id, exc)
            await StorageVolumeBackup.filter(id=backup_id).update(
                restore_status="failed",
                restore_failed_at=_now(),
                restore_failure_code=(
                    UNCONFIRMED_CODE if isinstance(exc, ReplaceUnconfirmed) else failure_code(exc)
                ),
                restore_failure_message=str(exc)[:2000],
            )
            if isinstance(exc, ReplaceUnconfirmed):
                await settle_replace(self.runner.registry, backup_id, row.server_id)
            return
        await StorageVolumeBackup.filter(id=backup_id).update(
            restore_status="ready", restore_completed_at=_now()
        )


def manifest_columns(manifest: VolumeManifest | None) -> dict[str, object]:
    """The backup row's columns for the manifest the agent counted (none from older agents)."""
    if manifest is None:
        return {}
    return {
        "manifest_entries": manifest.entries,
        "manifest_files": manifest.files,
        "manifest_file_bytes": manifest.file_bytes,
        "manifest_paths_sha256": manifest.paths_sha256,
    }
