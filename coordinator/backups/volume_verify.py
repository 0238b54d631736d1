"""Verifying storage-volume backups: the artifact is decrypted, checked and streamed into a
throwaway volume on the backup's server, counted back there (every entry of the tar read), and
the count compared with the manifest recorded when the backup was taken. The result is recorded
on the backup; the throwaway volume is removed by the agent whatever the outcome."""

import asyncio
import logging
from datetime import UTC, datetime

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.backups import volume_service
from coordinator.backups.runner import CHUNK_TIMEOUT_SECONDS, FINISH_TIMEOUT_SECONDS, failure_code
from coordinator.backups.volume_runner import VolumeBackupRunner
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.hub.session import AgentSession
from shared.errors import Conflict, ErrorCode, PlatformError
from shared.messages import RestoreFinish, VolumeManifest, VolumeVerifyOpen

logger = logging.getLogger(__name__)

EVENT = "storage-volume.backup-verification-requested"


def _now() -> datetime:
    return datetime.now(UTC)


def recorded(row: StorageVolumeBackup) -> VolumeManifest | None:
    """The manifest taken with the backup (none from agents before manifests)."""
    if row.manifest_paths_sha256 is None:
        return None
    return VolumeManifest(
        entries=row.manifest_entries or 0,
        files=row.manifest_files or 0,
        file_bytes=row.manifest_file_bytes or 0,
        paths_sha256=row.manifest_paths_sha256,
    )


def compare(expected: VolumeManifest | None, found: VolumeManifest) -> tuple[bool, str]:
    """Whether the restored volume matches the backup's manifest, and why (the message)."""
    counted = f"restored {found.files} file(s) with {found.file_bytes} byte(s) in {found.entries}"
    counted += " entries"
    if expected is None:
        return True, f"{counted}; the backup has no manifest to compare with (an older agent)"
    differences = [
        f"{label} {got} where the backup recorded {want}"
        for label, got, want in (
            ("entries", found.entries, expected.entries),
            ("files", found.files, expected.files),
            ("file bytes", found.file_bytes, expected.file_bytes),
        )
        if got != want
    ]
    if found.paths_sha256 != expected.paths_sha256:
        differences.append("the files' paths, types or sizes differ from the backup's")
    if differences:
        return False, f"{counted}: " + "; ".join(differences)
    return True, f"{counted}: matches the backup's manifest"


async def request(
    actor: Principal, request_id: str, backup_id: str, volumes: VolumeBackupRunner
) -> str:
    """Start verifying a ready backup of the caller's scope (one verification at a time)."""
    row = await volume_service.get(actor, backup_id)
    await start(row, volumes, actor, request_id)
    return row.id


async def start(
    row: StorageVolumeBackup,
    volumes: VolumeBackupRunner,
    actor: Principal | None,
    request_id: str | None,
    **payload: object,
) -> None:
    """Claim the verification of a ready backup (one at a time), audit it (``actor`` none: a
    policy asked, named in ``payload``) and start it."""
    if row.status != "ready":
        raise Conflict(f"the backup is {row.status}, not ready", details={"backupId": row.id})
    async with in_transaction():
        # Claimed in the same statement that checks it: two verifications never run at once.
        claimed = await StorageVolumeBackup.filter(
            Q(verification_status__isnull=True) | Q(verification_status__not="pending"), id=row.id
        ).update(
            verification_status="pending",
            verification_requested_at=_now(),
            verified_at=None,
            verification_files=None,
            verification_file_bytes=None,
            verification_message=None,
        )
        if not claimed:
            raise Conflict("a verification of this backup is running", details={"backupId": row.id})
        await audit.record(
            actor=actor,
            organization_id=row.organization_id,
            event_type=EVENT,
            aggregate_type="storage-volume",
            aggregate_id=row.storage_volume_id,
            payload={
                "projectId": row.project_id,
                "environmentId": row.environment_id,
                "backupId": row.id,
                **payload,
            },
            request_id=request_id,
        )
    volumes.runner.spawn(run(volumes, row.id))


def _reason(exc: PlatformError | OSError) -> str:
    if isinstance(exc, PlatformError) and exc.code == ErrorCode.UNKNOWN_TYPE:
        return "agent-unsupported: the server's agent cannot verify volume backups: upgrade it"
    return f"{failure_code(exc)}: {exc}"


async def run(volumes: VolumeBackupRunner, backup_id: str) -> None:
    """Stream the artifact into a throwaway volume, count it there, record the outcome."""
    row = await StorageVolumeBackup.get(id=backup_id)
    runner = volumes.runner
    key = f"vrf-{backup_id}"
    session: AgentSession | None = None
    try:
        session = runner.registry.require(row.server_id)
        await runner.ask(
            session,
            lambda mid: VolumeVerifyOpen(id=mid, backup_id=key, size=row.plain_bytes or 0),
            CHUNK_TIMEOUT_SECONDS,
        )
        store = await runner.store(row.backup_target_id)
        # Every record decrypted and the checksum matched before the agent counts anything.
        await runner.send(session, key, row.id, row.sha256 or "", store)
        reply = await runner.ask(
            session,
            lambda mid: RestoreFinish(id=mid, backup_id=key, check=True),
            FINISH_TIMEOUT_SECONDS,
        )
    except asyncio.CancelledError:
        raise
    except (PlatformError, OSError) as exc:
        # The agent removes the throwaway volume when its transfer ends, aborted or failed.
        await runner.abort(session, key)
        logger.warning("verification of volume backup %s failed: %s", backup_id, exc)
        await _settle(backup_id, False, _reason(exc)[:2000], None)
        return
    if reply.manifest is None:
        await _settle(backup_id, False, "the agent did not count the restored volume", None)
        return
    passed, message = compare(recorded(row), reply.manifest)
    await _settle(backup_id, passed, message[:2000], reply.manifest)


async def _settle(backup_id: str, passed: bool, message: str, found: VolumeManifest | None) -> None:
    await StorageVolumeBackup.filter(id=backup_id).update(
        verification_status="passed" if passed else "failed",
        verified_at=_now(),
        verification_files=found.files if found else None,
        verification_file_bytes=found.file_bytes if found else None,
        verification_message=message,
    )
