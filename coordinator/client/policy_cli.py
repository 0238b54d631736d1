"""The ``policy set|list|show`` commands ``berth db`` and ``berth volumes`` share: one scheduled
backup policy a database or volume, with retention and verification (docs/backups.md)."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import click

from coordinator.client import backup_targets_cli, render
from coordinator.client.http import ApiClient, JsonObject, objects, text
from coordinator.client.workspace_cli import segment

if TYPE_CHECKING:  # cli.py imports the command modules to register them; no cycle at run time
    from coordinator.client.cli import Options

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Switch:
    """A ``policy set`` flag only one kind of owner has (a volume's ``--stop``)."""

    flag: str
    field: str  # the policy field the flag turns on
    help: str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


@dataclass(frozen=True)
class PolicyCommands:
    """One kind of backup policy in the API and on the command line: ``{path}`` lists and sets
    them (one an owner, named by ``{owner_field}``), ``{path}/{id}`` shows one."""

    noun: str  # the owner's kind: "database"; the set command's argument is its upper case
    summary: str  # the ``policy`` group's help
    path: str
    owner_field: str
    # The owner by the reference the user typed: its id, name or slug.
    find: Callable[[ApiClient, str], Awaitable[JsonObject]]
    filter_flag: str  # ``policy list``'s option naming one owner
    columns: Sequence[render.Column]
    rows: Sequence[tuple[str, str]]
    switches: tuple[Switch, ...] = ()

    def of(self, policy_id: str) -> str:
        return f"{self.path}/{segment(policy_id)}"

    async def owner_id(self, api: ApiClient, ref: str) -> str:
        return text(await self.find(api, ref), "id")

    async def save(
        self, api: ApiClient, ref: str, settings: JsonObject, target: str | None
    ) -> JsonObject:
        """Set the policy of the owner ``ref`` names (replacing its previous one); as shown."""
        body: JsonObject = {self.owner_field: await self.owner_id(api, ref), **settings}
        if target is not None:
            body["backupTargetId"] = await backup_targets_cli.target_id(api, target)
        answer = await api.post(self.path, body)
        return await api.get(self.of(text(answer, "id")))

    async def listing(self, api: ApiClient, ref: str | None) -> JsonObject:
        """Every policy, or only the one of the owner ``ref`` names."""
        query: dict[str, str | int | None] = {}
        if ref is not None:
            query[self.owner_field] = await self.owner_id(api, ref)
        return await api.get(self.path, query)

    def human(self, data: JsonObject) -> None:
        """Show one policy: each row's label with the value at its path under ``policy``."""
        render.details(
            [(label, render.lookup(data, f"policy.{path}")) for label, path in self.rows]
        )

    def with_switches(self, command: F) -> F:
        """The owner's own ``policy set`` flags, in the order they are listed."""
        for switch in reversed(self.switches):
            command = click.option(switch.flag, switch.dest, is_flag=True, help=switch.help)(
                command
            )
        return command

    def attach(self, parent: click.Group) -> click.Group:
        """Add the ``policy`` group with its ``set``, ``list`` and ``show`` to ``parent``."""
        noun, owner = self.noun, self.noun.upper()
        empty = f"No {noun} backup policies: set one with 'berth {parent.name} policy set {owner}'."

        @parent.group("policy", help=self.summary)
        def policy() -> None:
            pass

        @policy.command(
            "set",
            help=f"""Set {owner}'s backup policy (replacing its previous one): a backup every
    --every hours, backups older than --keep-days (and beyond the newest --keep) deleted; with
    --verify each one is restored into a throwaway {noun} and counted once it is ready.""",
        )
        @click.argument(noun)
        @click.option("--every", "every", type=int, required=True, help="Hours between backups.")
        @click.option(
            "--keep-days", "keep_days", type=int, required=True, help="Delete older backups."
        )
        @click.option(
            "--keep", "keep", type=int, default=None, help="Keep only the newest N ready ones."
        )
        @self.with_switches
        @click.option("--no-retry", is_flag=True, help="Do not try a failed backup once more.")
        @click.option("--disable", is_flag=True, help="Keep the policy but take no backups.")
        @click.option(
            "--target", default=None, help="Backup target (id or name); default: coordinator."
        )
        @click.option(
            "--verify", is_flag=True, help="Verify each backup it takes once it is ready."
        )
        @click.pass_obj
        def policy_set(
            opts: "Options",
            /,
            every: int,
            keep_days: int,
            keep: int | None,
            no_retry: bool,
            disable: bool,
            target: str | None,
            verify: bool,
            **named: str | bool,  # the owner's reference (the argument) and its switches
        ) -> None:
            settings: JsonObject = {
                "scheduleIntervalHours": every,
                "retentionDays": keep_days,
                "keepCount": keep,
                "retryOnFailure": not no_retry,
                "enabled": not disable,
                **{switch.field: named[switch.dest] for switch in self.switches},
                "verifyAfterBackup": verify,
            }

            async def configure(api: ApiClient) -> JsonObject:
                return await self.save(api, str(named[noun]), settings, target)

            opts.show(opts.call(configure), self.human)

        @policy.command("list", help=f"List {noun} backup policies with their next and last runs.")
        @click.option(
            self.filter_flag, "ref", default=None, help=f"Only this {noun}'s policy (id or name)."
        )
        @click.pass_obj
        def policy_list(opts: "Options", ref: str | None) -> None:
            async def listing(api: ApiClient) -> JsonObject:
                return await self.listing(api, ref)

            def human(data: JsonObject) -> None:
                render.table(objects(data, "items"), self.columns, empty=empty)

            opts.show(opts.call(listing), human)

        @policy.command("show", help=f"Show one {noun} backup policy.")
        @click.argument("policy_id")
        @click.pass_obj
        def policy_show(opts: "Options", policy_id: str) -> None:
            async def showing(api: ApiClient) -> JsonObject:
                return await api.get(self.of(policy_id))

            opts.show(opts.call(showing), self.human)

        return policy
