"""The command bodies ``berth db`` and ``berth volumes`` share for their backups (docs/backups.md):
taking, waiting, restoring, and showing one backup or a list of them."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import click

from coordinator.client import render
from coordinator.client.http import ApiClient, ClientError, JsonObject, objects, text
from coordinator.client.workspace_cli import segment

POLL_SECONDS: Final = 1.0
Human = Callable[[JsonObject], None]
F = TypeVar("F", bound=Callable[..., object])


def wait_options(command: F) -> F:
    """``--wait/--no-wait`` and ``--timeout``: every backup command that starts work has them."""
    command = click.option(
        "--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait."
    )(command)
    return click.option(
        "--wait/--no-wait", default=True, show_default=True, help="Wait until it ends."
    )(command)


def confirm_overwrite(yes: bool, what: str, backup_id: str) -> None:
    """Ask before a restore replaces ``what`` (aborts on no), unless ``--yes`` said so already."""
    if not yes:
        click.confirm(f"Replace {what} with {backup_id}?", abort=True)


@dataclass(frozen=True)
class BackupApi:
    """One kind of backup in the API: ``{collection}/{ownerId}/backups`` lists and takes them,
    ``{collection}/backups/{backupId}`` shows one (the same shape for databases and volumes)."""

    collection: str
    # The owner (a database, a volume) by the reference the user typed: its id, name or slug.
    find: Callable[[ApiClient, str], Awaitable[JsonObject]]
    # The restore body's field naming another owner to restore into.
    target_field: str

    def owned_by(self, owner_id: str) -> str:
        return f"{self.collection}/{segment(owner_id)}/backups"

    def of(self, backup_id: str) -> str:
        return f"{self.collection}/backups/{segment(backup_id)}"

    async def owner_id(self, api: ApiClient, ref: str) -> str:
        return text(await self.find(api, ref), "id")

    async def listing(self, api: ApiClient, ref: str) -> JsonObject:
        """The backups of the owner ``ref`` names."""
        return await api.get(self.owned_by(await self.owner_id(api, ref)))

    async def take(
        self, api: ApiClient, ref: str, body: JsonObject, wait: bool, timeout: float
    ) -> JsonObject:
        """Back up the owner ``ref`` names; the backup as it is now, or once it ended."""
        created = await api.post(self.owned_by(await self.owner_id(api, ref)), body)
        return await self.settle(api, text(created, "id"), "status", wait, timeout)

    async def restore(
        self, api: ApiClient, backup_id: str, into: str | None, wait: bool, timeout: float
    ) -> JsonObject:
        """Restore ``backup_id`` into its owner, or ``into`` another; the overwrite is
        acknowledged here because the command asked (``confirm_overwrite``) first."""
        body: JsonObject = {"acknowledgeDataOverwrite": True}
        if into:
            body[self.target_field] = await self.owner_id(api, into)
        await api.post(f"{self.of(backup_id)}/restore", body)
        return await self.settle(api, backup_id, "latestRestoreAttempt.status", wait, timeout)

    async def settle(
        self, api: ApiClient, backup_id: str, field: str, wait: bool, timeout: float
    ) -> JsonObject:
        """The backup now, or (``wait``) once ``field`` (a status path) is no longer pending."""
        deadline = time.monotonic() + timeout
        while True:
            shown = await api.get(self.of(backup_id))
            if not wait or render.lookup(shown, f"backup.{field}") not in ("pending", None):
                return shown
            if time.monotonic() > deadline:
                raise ClientError(f"{backup_id} is still pending after {timeout:.0f} s")
            await asyncio.sleep(POLL_SECONDS)


def details_view(rows: Sequence[tuple[str, str]]) -> Human:
    """Show one backup: each row's label with the value at its path under ``backup``."""

    def human(data: JsonObject) -> None:
        render.details([(label, render.lookup(data, f"backup.{path}")) for label, path in rows])

    return human


def list_view(columns: Sequence[render.Column], empty: str) -> Human:
    """Show a list of backups as a table (sizes, relative ages), or ``empty`` when none."""

    def human(data: JsonObject) -> None:
        render.table(objects(data, "items"), columns, empty=empty)

    return human
