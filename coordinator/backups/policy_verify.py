"""Verification after a policy's backup (``verifyAfterBackup``, a Berth extension): when the
backup a policy took last is ready and was never verified, the policy loop starts the same
verification the on-demand routes run (audited with the policy's id, actor ``system``), its
result on the backup's ``verification``. Manual backups and failed ones are never verified here."""

import logging

from coordinator.backups import service, volume_verify
from coordinator.backups.runner import BackupRunner
from coordinator.backups.volume_runner import VolumeBackupRunner
from coordinator.db.backup_models import DependencyBackup, DependencyBackupPolicy
from coordinator.db.dependency_models import DependencyResource
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.db.volume_policy_models import StorageVolumeBackupPolicy
from shared.errors import PlatformError

logger = logging.getLogger(__name__)


def _unverified(
    policy: DependencyBackupPolicy | StorageVolumeBackupPolicy,
    row: DependencyBackup | StorageVolumeBackup | None,
) -> bool:
    """The policy asks for verification and its last backup is ready and never verified."""
    if not policy.verify_after_backup or row is None:
        return False
    return row.status == "ready" and row.verification_status is None


async def database(runner: BackupRunner, policy: DependencyBackupPolicy) -> str | None:
    """Start verifying the policy's last backup when it is due for it; its id, else ``None``."""
    if policy.last_backup_id is None:
        return None
    row = await DependencyBackup.get_or_none(id=policy.last_backup_id)
    if row is None or not _unverified(policy, row):
        return None
    source = await DependencyResource.get_or_none(id=row.dependency_resource_id, deleted_at=None)
    if source is None:
        return None
    try:
        await service.start_verification(row, source, runner, None, None, policyId=policy.id)
    except PlatformError as exc:  # the database is not ready or a check runs: the next look
        logger.info("policy %s did not verify %s now: %s", policy.id, row.id, exc)
        return None
    return row.id


async def volume(volumes: VolumeBackupRunner, policy: StorageVolumeBackupPolicy) -> str | None:
    """Start verifying the volume policy's last backup when it is due for it; its id, else
    ``None``."""
    if policy.last_backup_id is None:
        return None
    row = await StorageVolumeBackup.get_or_none(id=policy.last_backup_id)
    if row is None or not _unverified(policy, row):
        return None
    try:
        await volume_verify.start(row, volumes, None, None, policyId=policy.id)
    except PlatformError as exc:  # a check of it runs already: the next look tries again
        logger.info("volume policy %s did not verify %s now: %s", policy.id, row.id, exc)
        return None
    return row.id
