"""``berth db backup|backups|restore|verify``: backups of databases (docs/backups.md)."""

import asyncio
import time
from typing import TYPE_CHECKING, Final

import click

from coordinator.client import backup_targets_cli, render
from coordinator.client.db_cli import _find_db, db
from coordinator.client.http import ApiClient, ClientError, JsonObject, objects, text
from coordinator.client.workspace_cli import segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

BACKUP_COLUMNS: Final = (
    ("ID", "id"), ("STATUS", "status"), ("SIZE", "sizeBytes"), ("CREATED", "createdAt"),
    ("VERIFIED", "verification.status"), ("ROWS", "verification.rows"),
    ("RESTORE", "latestRestoreAttempt.status"), ("FAILURE", "failureMessage"),
)  # fmt: skip
POLL_SECONDS: Final = 1.0
# Commands live on ``berth db`` (db_cli's group); nothing new at the top level.
COMMANDS: Final[tuple[click.Command, ...]] = ()


async def _wait(api: ApiClient, backup_id: str, field: str, timeout: float) -> JsonObject:
    """Poll the backup until ``field`` (a status path) is no longer pending."""
    deadline = time.monotonic() + timeout
    while True:
        shown = await api.get(f"/dependency-resources/backups/{segment(backup_id)}")
        if render.lookup(shown, f"backup.{field}") not in ("pending", None):
            return shown
        if time.monotonic() > deadline:
            raise ClientError(f"{backup_id} is still pending after {timeout:.0f} s")
        await asyncio.sleep(POLL_SECONDS)


def _human(data: JsonObject) -> None:
    def at(path: str) -> object:
        return render.lookup(data, f"backup.{path}")

    render.details(
        [
            ("ID", at("id")),
            ("Database", at("dependencyResourceId")),
            ("Status", at("status")),
            ("Size (bytes)", at("sizeBytes")),
            ("SHA-256", at("sha256")),
            ("Encryption", at("encryption")),
            ("Created", at("createdAt")),
            ("Failure", at("failureMessage")),
            ("Verification", at("verification.status")),
            ("Verified rows", at("verification.rows")),
            ("Verification note", at("verification.message")),
            ("Last restore", at("latestRestoreAttempt.status")),
            ("Restore failure", at("latestRestoreAttempt.failureMessage")),
        ]
    )


@db.command("backup")
@click.argument("database")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until it ends.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait.")
@click.option("--target", default=None, help="Backup target (id or name); default: coordinator.")
@click.pass_obj
def db_backup(
    opts: "Options", database: str, wait: bool, timeout: float, target: str | None
) -> None:
    """Back up DATABASE (PostgreSQL, MariaDB, Redis): an encrypted dump on the coordinator, or
    in a backup target (``berth backup-targets``)."""

    async def backup(api: ApiClient) -> JsonObject:
        dependency_id = text(await _find_db(api, database), "id")
        body: JsonObject = {}
        if target is not None:
            body["backupTargetId"] = await backup_targets_cli.target_id(api, target)
        created = await api.post(f"/dependency-resources/{segment(dependency_id)}/backups", body)
        if not wait:
            return await api.get(f"/dependency-resources/backups/{segment(text(created, 'id'))}")
        return await _wait(api, text(created, "id"), "status", timeout)

    opts.show(opts.call(backup), _human)


@db.command("backups")
@click.argument("database")
@click.pass_obj
def db_backups(opts: "Options", database: str) -> None:
    """List DATABASE's backups: size, age, verification and last restore."""

    async def listing(api: ApiClient) -> JsonObject:
        dependency_id = text(await _find_db(api, database), "id")
        return await api.get(f"/dependency-resources/{segment(dependency_id)}/backups")

    def human(data: JsonObject) -> None:
        empty = f"No backups: take one with 'berth db backup {database}'."
        render.table(objects(data, "items"), BACKUP_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


@db.command("restore")
@click.argument("backup_id")
@click.option("--into", "into", help="Restore into this other database (id or name): a clone.")
@click.option("--yes", is_flag=True, help="Do not ask (the database's tables are replaced).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until it ends.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait.")
@click.pass_obj
def db_restore(
    opts: "Options", backup_id: str, into: str | None, yes: bool, wait: bool, timeout: float
) -> None:
    """Restore backup BACKUP_ID into its database, or --into another one."""
    if not yes:
        click.confirm(f"Replace the data of {into or 'the database'} with {backup_id}?", abort=True)

    async def restore(api: ApiClient) -> JsonObject:
        body: JsonObject = {"acknowledgeDataOverwrite": True}
        if into:
            body["targetDependencyResourceId"] = text(await _find_db(api, into), "id")
        await api.post(f"/dependency-resources/backups/{segment(backup_id)}/restore", body)
        if not wait:
            return await api.get(f"/dependency-resources/backups/{segment(backup_id)}")
        return await _wait(api, backup_id, "latestRestoreAttempt.status", timeout)

    opts.show(opts.call(restore), _human)


@db.command("verify")
@click.argument("backup_id")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until it ends.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait.")
@click.pass_obj
def db_verify(opts: "Options", backup_id: str, wait: bool, timeout: float) -> None:
    """Verify BACKUP_ID: restore it into a throwaway database and count tables and rows."""

    async def verify(api: ApiClient) -> JsonObject:
        await api.post(f"/dependency-resources/backups/{segment(backup_id)}/verify", {})
        if not wait:
            return await api.get(f"/dependency-resources/backups/{segment(backup_id)}")
        return await _wait(api, backup_id, "verification.status", timeout)

    opts.show(opts.call(verify), _human)
