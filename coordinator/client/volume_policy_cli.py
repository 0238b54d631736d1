"""``berth volumes policy set|list|show``: scheduled backups of named volumes with retention
(docs/backups.md)."""

from typing import TYPE_CHECKING, Final

import click

from coordinator.client import backup_targets_cli, render
from coordinator.client.http import ApiClient, JsonObject, objects, text
from coordinator.client.volumes_cli import _volume, volumes
from coordinator.client.workspace_cli import segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

PATH: Final = "/storage-volumes/backup-policies"
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
# Commands live on ``berth volumes`` (volumes_cli's group); nothing new at the top level.
COMMANDS: Final[tuple[click.Command, ...]] = ()


def _human(data: JsonObject) -> None:
    render.details([(label, render.lookup(data, f"policy.{path}")) for label, path in _ROWS])


@volumes.group("policy")
def policy() -> None:
    """Scheduled backups of a named volume, kept by days and by count."""


@policy.command("set")
@click.argument("volume")
@click.option("--every", "every", type=int, required=True, help="Hours between backups.")
@click.option("--keep-days", "keep_days", type=int, required=True, help="Delete older backups.")
@click.option("--keep", "keep", type=int, default=None, help="Keep only the newest N ready ones.")
@click.option("--stop", is_flag=True, help="Stop the containers using it during each copy.")
@click.option("--no-retry", is_flag=True, help="Do not try a failed backup once more.")
@click.option("--disable", is_flag=True, help="Keep the policy but take no backups.")
@click.option("--target", default=None, help="Backup target (id or name); default: coordinator.")
@click.option("--verify", is_flag=True, help="Verify each backup it takes once it is ready.")
@click.pass_obj
def policy_set(
    opts: "Options",
    volume: str,
    every: int,
    keep_days: int,
    keep: int | None,
    stop: bool,
    no_retry: bool,
    disable: bool,
    target: str | None,
    verify: bool,
) -> None:
    """Set VOLUME's backup policy (replacing its previous one): a backup every --every hours,
    backups older than --keep-days (and beyond the newest --keep) deleted; with --verify each
    one is restored into a throwaway volume and counted once it is ready."""

    async def configure(api: ApiClient) -> JsonObject:
        body: JsonObject = {
            "storageVolumeId": text(await _volume(api, volume), "id"),
            "scheduleIntervalHours": every,
            "retentionDays": keep_days,
            "keepCount": keep,
            "retryOnFailure": not no_retry,
            "enabled": not disable,
            "stopResource": stop,
            "verifyAfterBackup": verify,
        }
        if target is not None:
            body["backupTargetId"] = await backup_targets_cli.target_id(api, target)
        answer = await api.post(PATH, body)
        return await api.get(f"{PATH}/{segment(text(answer, 'id'))}")

    opts.show(opts.call(configure), _human)


@policy.command("list")
@click.option("--volume", "volume", default=None, help="Only this volume's policy (id or name).")
@click.pass_obj
def policy_list(opts: "Options", volume: str | None) -> None:
    """List volume backup policies with their next and last runs."""

    async def listing(api: ApiClient) -> JsonObject:
        query: dict[str, str | int | None] = {}
        if volume is not None:
            query["storageVolumeId"] = text(await _volume(api, volume), "id")
        return await api.get(PATH, query)

    def human(data: JsonObject) -> None:
        empty = "No volume backup policies: set one with 'berth volumes policy set VOLUME'."
        render.table(objects(data, "items"), POLICY_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


@policy.command("show")
@click.argument("policy_id")
@click.pass_obj
def policy_show(opts: "Options", policy_id: str) -> None:
    """Show one volume backup policy."""

    async def showing(api: ApiClient) -> JsonObject:
        return await api.get(f"{PATH}/{segment(policy_id)}")

    opts.show(opts.call(showing), _human)
