"""``berth db policy set|list|show``: scheduled backups of databases with retention and, with
``--verify``, a verification of each (docs/backups.md; the commands are policy_cli's)."""

from typing import Final

import click

from coordinator.client.db_cli import _find_db, db
from coordinator.client.policy_cli import PolicyCommands

POLICY_COLUMNS: Final = (
    ("ID", "id"), ("DATABASE", "dependencyResourceId"), ("EVERY (H)", "scheduleIntervalHours"),
    ("KEEP DAYS", "retentionDays"), ("KEEP", "keepCount"), ("VERIFY", "verifyAfterBackup"),
    ("ENABLED", "enabled"), ("NEXT", "nextRunAt"), ("LAST", "lastRunAt"),
)  # fmt: skip
_ROWS: Final = (
    ("ID", "id"),
    ("Database", "dependencyResourceId"),
    ("Version", "version"),
    ("Every (hours)", "scheduleIntervalHours"),
    ("Keep (days)", "retentionDays"),
    ("Keep (newest)", "keepCount"),
    ("Retry on failure", "retryOnFailure"),
    ("Verify after backup", "verifyAfterBackup"),
    ("Backup target", "backupTargetId"),
    ("Enabled", "enabled"),
    ("Last run", "lastRunAt"),
    ("Next run", "nextRunAt"),
    ("Last backup", "lastBackupId"),
)
POLICIES: Final = PolicyCommands(
    noun="database",
    summary="Scheduled backups of a database, kept by days and by count.",
    path="/dependency-resources/backup-policies",
    owner_field="dependencyResourceId",
    find=_find_db,
    filter_flag="--db",
    columns=POLICY_COLUMNS,
    rows=_ROWS,
)
policy: Final = POLICIES.attach(db)
# Commands live on ``berth db`` (db_cli's group); nothing new at the top level.
COMMANDS: Final[tuple[click.Command, ...]] = ()
