"""``berth volumes backup|backups|restore``: backups of named volumes (docs/backups.md)."""

import asyncio
import time
from typing import TYPE_CHECKING, Final

import click

from coordinator.client import backup_targets_cli, render
from coordinator.client.http import ApiClient, ClientError, JsonObject, objects, text
from coordinator.client.volumes_cli import _volume, volumes
from coordinator.client.workspace_cli import segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

BACKUP_COLUMNS: Final = (
    ("ID", "id"), ("STATUS", "status"), ("SIZE", "sizeBytes"), ("CREATED", "createdAt"),
    ("STOPPED", "stopResource"), ("RESTORE", "latestRestoreAttempt.status"),
    ("FAILURE", "failureMessage"),
)  # fmt: skip
POLL_SECONDS: Final = 1.0
# Commands live on ``berth volumes`` (volumes_cli's group); nothing new at the top level.
COMMANDS: Final[tuple[click.Command, ...]] = ()


async def _wait(api: ApiClient, backup_id: str, field: str, timeout: float) -> JsonObject:
    """Poll the backup until ``field`` (a status path) is no longer pending."""
    deadline = time.monotonic() + timeout
    while True:
        shown = await api.get(f"/storage-volumes/backups/{segment(backup_id)}")
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
            ("Volume", at("storageVolumeId")),
            ("Status", at("status")),
            ("Size (bytes)", at("sizeBytes")),
            ("Archive (bytes)", at("archiveBytes")),
            ("SHA-256", at("sha256")),
            ("Encryption", at("encryption")),
            ("Resource stopped", at("stopResource")),
            ("Created", at("createdAt")),
            ("Failure", at("failureMessage")),
            ("Last restore", at("latestRestoreAttempt.status")),
            ("Restored into", at("latestRestoreAttempt.targetStorageVolumeId")),
            ("Restore failure", at("latestRestoreAttempt.failureMessage")),
        ]
    )


@volumes.command("backup")
@click.argument("volume")
@click.option("--stop", is_flag=True, help="Stop the containers using it during the copy.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until it ends.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait.")
@click.option("--target", default=None, help="Backup target (id or name); default: coordinator.")
@click.pass_obj
def volumes_backup(
    opts: "Options", volume: str, stop: bool, wait: bool, timeout: float, target: str | None
) -> None:
    """Back up named VOLUME: an encrypted tar archive on the coordinator, or in a backup target
    (``berth backup-targets``)."""

    async def backup(api: ApiClient) -> JsonObject:
        volume_id = text(await _volume(api, volume), "id")
        body: JsonObject = {"stopResource": stop}
        if target is not None:
            body["backupTargetId"] = await backup_targets_cli.target_id(api, target)
        created = await api.post(f"/storage-volumes/{segment(volume_id)}/backups", body)
        if not wait:
            return await api.get(f"/storage-volumes/backups/{segment(text(created, 'id'))}")
        return await _wait(api, text(created, "id"), "status", timeout)

    opts.show(opts.call(backup), _human)


@volumes.command("backups")
@click.argument("volume")
@click.pass_obj
def volumes_backups(opts: "Options", volume: str) -> None:
    """List VOLUME's backups: size, age and last restore."""

    async def listing(api: ApiClient) -> JsonObject:
        volume_id = text(await _volume(api, volume), "id")
        return await api.get(f"/storage-volumes/{segment(volume_id)}/backups")

    def human(data: JsonObject) -> None:
        empty = f"No backups: take one with 'berth volumes backup {volume}'."
        render.table(objects(data, "items"), BACKUP_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


@volumes.command("restore")
@click.argument("backup_id")
@click.option("--into", "into", help="Restore into this other named volume (id or name).")
@click.option("--yes", is_flag=True, help="Do not ask (the volume's files are replaced).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until it ends.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait.")
@click.pass_obj
def volumes_restore(
    opts: "Options", backup_id: str, into: str | None, yes: bool, wait: bool, timeout: float
) -> None:
    """Restore backup BACKUP_ID into its volume, or --into another one. Containers using the
    volume are stopped meanwhile and started again."""
    if not yes:
        click.confirm(f"Replace the files of {into or 'the volume'} with {backup_id}?", abort=True)

    async def restore(api: ApiClient) -> JsonObject:
        body: JsonObject = {"acknowledgeDataOverwrite": True}
        if into:
            body["targetStorageVolumeId"] = text(await _volume(api, into), "id")
        await api.post(f"/storage-volumes/backups/{segment(backup_id)}/restore", body)
        if not wait:
            return await api.get(f"/storage-volumes/backups/{segment(backup_id)}")
        return await _wait(api, backup_id, "latestRestoreAttempt.status", timeout)

    opts.show(opts.call(restore), _human)
