"""``berth db policy set|list|show``: scheduled backups of databases with retention and, with
``--verify``, a verification of each (docs/backups.md)."""

from typing import TYPE_CHECKING, Final

import click

from coordinator.client import backup_targets_cli, render
from coordinator.client.db_cli import _find_db, db
from coordinator.client.http import ApiClient, JsonObject, objects, text
from coordinator.client.workspace_cli import segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

PATH: Final = "/dependency-resources/backup-policies"
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
# Commands live on ``berth db`` (db_cli's group); nothing new at the top level.
COMMANDS: Final[tuple[click.Command, ...]] = ()


def _human(data: JsonObject) -> None:
    render.details([(label, render.lookup(data, f"policy.{path}")) for label, path in _ROWS])


@db.group("policy")
def policy() -> None:
    """Scheduled backups of a database, kept by days and by count."""


@policy.command("set")
@click.argument("database")
@click.option("--every", "every", type=int, required=True, help="Hours between backups.")
@click.option("--keep-days", "keep_days", type=int, required=True, help="Delete older backups.")
@click.option("--keep", "keep", type=int, default=None, help="Keep only the newest N ready ones.")
@click.option("--no-retry", is_flag=True, help="Do not try a failed backup once more.")
@click.option("--disable", is_flag=True, help="Keep the policy but take no backups.")
@click.option("--target", default=None, help="Backup target (id or name); default: coordinator.")
@click.option("--verify", is_flag=True, help="Verify each backup it takes once it is ready.")
@click.pass_obj
def policy_set(
    opts: "Options",
    database: str,
    every: int,
    keep_days: int,
    keep: int | None,
    no_retry: bool,
    disable: bool,
    target: str | None,
    verify: bool,
) -> None:
    """Set DATABASE's backup policy (replacing its previous one): a backup every --every hours,
    backups older than --keep-days (and beyond the newest --keep) deleted; with --verify each
    one is restored into a throwaway database and counted once it is ready."""

    async def configure(api: ApiClient) -> JsonObject:
        body: JsonObject = {
            "dependencyResourceId": text(await _find_db(api, database), "id"),
            "scheduleIntervalHours": every,
            "retentionDays": keep_days,
            "keepCount": keep,
            "retryOnFailure": not no_retry,
            "enabled": not disable,
            "verifyAfterBackup": verify,
        }
        if target is not None:
            body["backupTargetId"] = await backup_targets_cli.target_id(api, target)
        answer = await api.post(PATH, body)
        return await api.get(f"{PATH}/{segment(text(answer, 'id'))}")

    opts.show(opts.call(configure), _human)


@policy.command("list")
@click.option("--db", "database", default=None, help="Only this database's policy (id or name).")
@click.pass_obj
def policy_list(opts: "Options", database: str | None) -> None:
    """List database backup policies with their next and last runs."""

    async def listing(api: ApiClient) -> JsonObject:
        query: dict[str, str | int | None] = {}
        if database is not None:
            query["dependencyResourceId"] = text(await _find_db(api, database), "id")
        return await api.get(PATH, query)

    def human(data: JsonObject) -> None:
        empty = "No database backup policies: set one with 'berth db policy set DATABASE'."
        render.table(objects(data, "items"), POLICY_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


@policy.command("show")
@click.argument("policy_id")
@click.pass_obj
def policy_show(opts: "Options", policy_id: str) -> None:
    """Show one database backup policy."""

    async def showing(api: ApiClient) -> JsonObject:
        return await api.get(f"{PATH}/{segment(policy_id)}")

    opts.show(opts.call(showing), _human)
