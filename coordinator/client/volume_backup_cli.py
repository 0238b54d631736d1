"""``berth volumes backup|backups|restore|verify``: backups of named volumes (docs/backups.md)."""

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
from coordinator.client.http import ApiClient, JsonObject
from coordinator.client.volumes_cli import _volume, volumes

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

BACKUP_COLUMNS: Final = (
    ("ID", "id"), ("STATUS", "status"), ("SIZE", "sizeBytes"), ("CREATED", "createdAt"),
    ("STOPPED", "stopResource"), ("RESTORE", "latestRestoreAttempt.status"),
    ("FAILURE", "failureMessage"), ("VERIFIED", "verification.status"),
)  # fmt: skip
BACKUPS: Final = BackupApi("/storage-volumes", _volume, "targetStorageVolumeId")
_human: Final = details_view(
    [
        ("ID", "id"),
        ("Volume", "storageVolumeId"),
        ("Status", "status"),
        ("Size (bytes)", "sizeBytes"),
        ("Archive (bytes)", "archiveBytes"),
        ("SHA-256", "sha256"),
        ("Encryption", "encryption"),
        ("Resource stopped", "stopResource"),
        ("Created", "createdAt"),
        ("Failure", "failureMessage"),
        ("Last restore", "latestRestoreAttempt.status"),
        ("Restored into", "latestRestoreAttempt.targetStorageVolumeId"),
        ("Restore failure", "latestRestoreAttempt.failureMessage"),
        ("Files (manifest)", "manifest.files"),
        ("File bytes (manifest)", "manifest.fileBytes"),
        ("Verification", "verification.status"),
        ("Verified", "verification.checkedAt"),
        ("Verification result", "verification.message"),
    ]
)
# Commands live on ``berth volumes`` (volumes_cli's group); nothing new at the top level.
COMMANDS: Final[tuple[click.Command, ...]] = ()


@volumes.command("backup")
@click.argument("volume")
@click.option("--stop", is_flag=True, help="Stop the containers using it during the copy.")
@wait_options
@click.option("--target", default=None, help="Backup target (id or name); default: coordinator.")
@click.pass_obj
def volumes_backup(
    opts: "Options", volume: str, stop: bool, wait: bool, timeout: float, target: str | None
) -> None:
    """Back up named VOLUME: an encrypted tar archive on the coordinator, or in a backup target
    (``berth backup-targets``)."""

    async def backup(api: ApiClient) -> JsonObject:
        body: JsonObject = {"stopResource": stop}
        if target is not None:
            body["backupTargetId"] = await backup_targets_cli.target_id(api, target)
        return await BACKUPS.take(api, volume, body, wait, timeout)

    opts.show(opts.call(backup), _human)


@volumes.command("backups")
@click.argument("volume")
@click.pass_obj
def volumes_backups(opts: "Options", volume: str) -> None:
    """List VOLUME's backups: size, age and last restore."""

    async def listing(api: ApiClient) -> JsonObject:
        return await BACKUPS.listing(api, volume)

    empty = f"No backups: take one with 'berth volumes backup {volume}'."
    opts.show(opts.call(listing), list_view(BACKUP_COLUMNS, empty))


@volumes.command("restore")
@click.argument("backup_id")
@click.option("--into", "into", help="Restore into this other named volume (id or name).")
@click.option("--yes", is_flag=True, help="Do not ask (the volume's files are replaced).")
@wait_options
@click.pass_obj
def volumes_restore(
    opts: "Options", backup_id: str, into: str | None, yes: bool, wait: bool, timeout: float
) -> None:
    """Restore backup BACKUP_ID into its volume, or --into another one. Containers using the
    volume are stopped meanwhile and started again."""
    confirm_overwrite(yes, f"the files of {into or 'the volume'}", backup_id)

    async def restore(api: ApiClient) -> JsonObject:
        return await BACKUPS.restore(api, backup_id, into, wait, timeout)

    opts.show(opts.call(restore), _human)


@volumes.command("verify")
@click.argument("backup_id")
@wait_options
@click.pass_obj
def volumes_verify(opts: "Options", backup_id: str, wait: bool, timeout: float) -> None:
    """Verify BACKUP_ID: restore it into a throwaway volume on its server, count its files and
    bytes, and compare them with what the backup recorded (the volume itself is not touched)."""

    async def verify(api: ApiClient) -> JsonObject:
        await api.post(f"{BACKUPS.of(backup_id)}/verify", {})
        return await BACKUPS.settle(api, backup_id, "verification.status", wait, timeout)

    opts.show(opts.call(verify), _human)
