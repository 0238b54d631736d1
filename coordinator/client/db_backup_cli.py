"""``berth db backup|backups|restore|verify``: backups of databases (docs/backups.md)."""

from typing import TYPE_CHECKING, Final

import click

from coordinator.client import backup_targets_cli
from coordinator.client.backup_commands import (
    BackupApi,
    confirm_overwrite,
    details_view,
    list_view,
    wait_options,
)
from coordinator.client.db_cli import _find_db, db
from coordinator.client.http import ApiClient, JsonObject

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

BACKUP_COLUMNS: Final = (
    ("ID", "id"), ("STATUS", "status"), ("SIZE", "sizeBytes"), ("CREATED", "createdAt"),
    ("VERIFIED", "verification.status"), ("ROWS", "verification.rows"),
    ("RESTORE", "latestRestoreAttempt.status"), ("FAILURE", "failureMessage"),
)  # fmt: skip
BACKUPS: Final = BackupApi("/dependency-resources", _find_db, "targetDependencyResourceId")
_human: Final = details_view(
    [
        ("ID", "id"),
        ("Database", "dependencyResourceId"),
        ("Status", "status"),
        ("Size (bytes)", "sizeBytes"),
        ("SHA-256", "sha256"),
        ("Encryption", "encryption"),
        ("Created", "createdAt"),
        ("Failure", "failureMessage"),
        ("Verification", "verification.status"),
        ("Verified rows", "verification.rows"),
        ("Verification note", "verification.message"),
        ("Last restore", "latestRestoreAttempt.status"),
        ("Restore failure", "latestRestoreAttempt.failureMessage"),
    ]
)
# Commands live on ``berth db`` (db_cli's group); nothing new at the top level.
COMMANDS: Final[tuple[click.Command, ...]] = ()


@db.command("backup")
@click.argument("database")
@wait_options
@click.option("--target", default=None, help="Backup target (id or name); default: coordinator.")
@click.pass_obj
def db_backup(
    opts: "Options", database: str, wait: bool, timeout: float, target: str | None
) -> None:
    """Back up DATABASE (PostgreSQL, MariaDB, Redis): an encrypted dump on the coordinator, or
    in a backup target (``berth backup-targets``)."""

    async def backup(api: ApiClient) -> JsonObject:
        body: JsonObject = {}
        if target is not None:
            body["backupTargetId"] = await backup_targets_cli.target_id(api, target)
        return await BACKUPS.take(api, database, body, wait, timeout)

    opts.show(opts.call(backup), _human)


@db.command("backups")
@click.argument("database")
@click.pass_obj
def db_backups(opts: "Options", database: str) -> None:
    """List DATABASE's backups: size, age, verification and last restore."""

    async def listing(api: ApiClient) -> JsonObject:
        return await BACKUPS.listing(api, database)

    empty = f"No backups: take one with 'berth db backup {database}'."
    opts.show(opts.call(listing), list_view(BACKUP_COLUMNS, empty))


@db.command("restore")
@click.argument("backup_id")
@click.option("--into", "into", help="Restore into this other database (id or name): a clone.")
@click.option("--yes", is_flag=True, help="Do not ask (the database's tables are replaced).")
@wait_options
@click.pass_obj
def db_restore(
    opts: "Options", backup_id: str, into: str | None, yes: bool, wait: bool, timeout: float
) -> None:
    """Restore backup BACKUP_ID into its database, or --into another one."""
    confirm_overwrite(yes, f"the data of {into or 'the database'}", backup_id)

    async def restore(api: ApiClient) -> JsonObject:
        return await BACKUPS.restore(api, backup_id, into, wait, timeout)

    opts.show(opts.call(restore), _human)


@db.command("verify")
@click.argument("backup_id")
@wait_options
@click.pass_obj
def db_verify(opts: "Options", backup_id: str, wait: bool, timeout: float) -> None:
    """Verify BACKUP_ID: restore it into a throwaway database and count tables and rows."""

    async def verify(api: ApiClient) -> JsonObject:
        await api.post(f"{BACKUPS.of(backup_id)}/verify", {})
        return await BACKUPS.settle(api, backup_id, "verification.status", wait, timeout)

    opts.show(opts.call(verify), _human)
