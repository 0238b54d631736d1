"""``berth volumes policy set|list|show``: scheduled backups of named volumes with retention
(docs/backups.md; the commands are policy_cli's)."""

from typing import Final

import click

from coordinator.client.policy_cli import PolicyCommands, Switch
from coordinator.client.volumes_cli import _volume, volumes

POLICY_COLUMNS: Final = (
    ("ID", "id"), ("VOLUME", "storageVolumeId"), ("EVERY (H)", "scheduleIntervalHours"),
    ("KEEP DAYS", "retentionDays"), ("KEEP", "keepCount"), ("STOP", "stopResource"),
    ("ENABLED", "enabled"), ("NEXT", "nextRunAt"), ("LAST", "lastRunAt"),
)  # fmt: skip
_ROWS: Final = (
    ("ID", "id"),
    ("Volume", "storageVolumeId"),
    ("Version", "version"),
    ("Every (hours)", "scheduleIntervalHours"),
    ("Keep (days)", "retentionDays"),
    ("Keep (newest)", "keepCount"),
    ("Retry on failure", "retryOnFailure"),
    ("Stop resource", "stopResource"),
    ("Backup target", "backupTargetId"),
    ("Enabled", "enabled"),
    ("Last run", "lastRunAt"),
    ("Next run", "nextRunAt"),
    ("Last backup", "lastBackupId"),
    ("Verify after backup", "verifyAfterBackup"),
)
POLICIES: Final = PolicyCommands(
    noun="volume",
    summary="Scheduled backups of a named volume, kept by days and by count.",
    path="/storage-volumes/backup-policies",
    owner_field="storageVolumeId",
    find=_volume,
    filter_flag="--volume",
    columns=POLICY_COLUMNS,
    rows=_ROWS,
    switches=(Switch("--stop", "stopResource", "Stop the containers using it during each copy."),),
)
policy: Final = POLICIES.attach(volumes)
# Commands live on ``berth volumes`` (volumes_cli's group); nothing new at the top level.
COMMANDS: Final[tuple[click.Command, ...]] = ()
