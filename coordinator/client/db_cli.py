"""``berth db create|import|list|show|bind|unbind|delete``: databases (dependency resources)."""

import asyncio
import os
import time
from typing import TYPE_CHECKING, Final

import click

from coordinator.client import render
from coordinator.client.http import ApiClient, ClientError, JsonObject, objects, text
from coordinator.client.workspace_cli import (
    find_environment,
    find_project,
    find_resource,
    find_server,
    segment,
)

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

KINDS: Final = ("postgres", "redis", "mysql")
DB_COLUMNS: Final = (
    ("ID", "id"), ("NAME", "name"), ("KIND", "kind"), ("STATUS", "lifecycleStatus"),
    ("SERVER", "serverId"), ("CONNECTION", "connection.maskedConnection"),
    ("CREATED", "createdAt"),
)  # fmt: skip
LIMIT: Final = 500
WAIT_POLL_SECONDS: Final = 1.0


async def _find_db(api: ApiClient, ref: str) -> JsonObject:
    """A dependency resource by id, name or slug."""
    if ref.startswith("dbr_"):
        shown = await api.get(f"/dependency-resources/{segment(ref)}")
        item = shown.get("dependencyResource")
        if isinstance(item, dict):
            return item
    found = [
        item
        for item in objects(await api.get("/dependency-resources", {"limit": LIMIT}), "items")
        if ref in (text(item, "name"), text(item, "slug"))
    ]
    if len(found) != 1:
        many = f"{len(found)} databases are" if found else "no database is"
        raise ClientError(f"{many} named {ref!r} (see 'berth db list'; use an id)")
    return found[0]


async def _owner(api: ApiClient, project: str, env: str) -> tuple[str, str]:
    project_id = text(await find_project(api, project), "id")
    return project_id, text(await find_environment(api, project_id, env), "id")


@click.group()
def db() -> None:
    """Run databases on your servers (PostgreSQL, Redis, MySQL/MariaDB), or import external
    ones, and bind them to resources: the URL arrives as an environment variable."""


@db.command("create")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("name")
@click.option("--project", required=True, help="Project (id, name or slug).")
@click.option("--env", "env", required=True, help="Environment (id or name).")
@click.option("--server", required=True, help="Server (id or name) that runs it.")
@click.option("--memory-mb", type=click.IntRange(min=64), help="Memory limit in MiB.")
@click.option("--cpus", type=click.FloatRange(min=0, min_open=True), help="CPU limit.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until ready.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds to wait.")
@click.pass_obj
def db_create(
    opts: "Options",
    kind: str,
    name: str,
    project: str,
    env: str,
    server: str,
    memory_mb: int | None,
    cpus: float | None,
    wait: bool,
    timeout: float,
) -> None:
    """Provision a KIND database called NAME on a server (private network, own volume)."""

    async def create(api: ApiClient) -> JsonObject:
        project_id, environment_id = await _owner(api, project, env)
        body: JsonObject = {
            "kind": kind,
            "name": name,
            "projectId": project_id,
            "environmentId": environment_id,
            "serverId": text(await find_server(api, server), "id"),
        }
        if memory_mb is not None:
            body["memoryBytes"] = memory_mb * 1024 * 1024
        if cpus is not None:
            body["cpus"] = cpus
        created = await api.post("/dependency-resources/provision", body)
        path = f"/dependency-resources/{segment(text(created, 'id'))}"
        deadline = time.monotonic() + timeout
        while True:
            shown = await api.get(path)
            status = render.lookup(shown, "dependencyResource.lifecycleStatus")
            if not wait or status in ("ready", "failed") or time.monotonic() > deadline:
                return shown
            await asyncio.sleep(WAIT_POLL_SECONDS)

    def human(data: JsonObject) -> None:
        at = render.lookup
        status = at(data, "dependencyResource.lifecycleStatus")
        click.echo(f"Database {at(data, 'dependencyResource.name')} "
                   f"({at(data, 'dependencyResource.id')}) is {status}.")  # fmt: skip
        if status == "failed":
            raise click.ClickException(
                str(at(data, "dependencyResource.providerRealization.failureMessage"))
            )
        click.echo(f"Connection: {at(data, 'dependencyResource.connection.maskedConnection')}")

    opts.show(opts.call(create), human)


@db.command("import")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("name")
@click.option("--project", required=True, help="Project (id, name or slug).")
@click.option("--env", "env", required=True, help="Environment (id or name).")
@click.option(
    "--url-env",
    default="BERTH_DB_URL",
    show_default=True,
    help="Environment variable holding the connection URL (kept out of shell history).",
)
@click.pass_obj
def db_import(opts: "Options", kind: str, name: str, project: str, env: str, url_env: str) -> None:
    """Import an external database by its connection URL (stored sealed, shown masked)."""
    url = os.environ.get(url_env)
    if not url:
        raise click.UsageError(f"set {url_env} to the connection URL")

    async def imported(api: ApiClient) -> JsonObject:
        project_id, environment_id = await _owner(api, project, env)
        body: JsonObject = {
            "kind": kind,
            "name": name,
            "projectId": project_id,
            "environmentId": environment_id,
            "connectionUrl": url,
        }
        created = await api.post("/dependency-resources/import", body)
        return await api.get(f"/dependency-resources/{segment(text(created, 'id'))}")

    def human(data: JsonObject) -> None:
        at = render.lookup
        click.echo(f"Imported {at(data, 'dependencyResource.name')} "
                   f"({at(data, 'dependencyResource.id')}): "
                   f"{at(data, 'dependencyResource.connection.maskedConnection')}")  # fmt: skip

    opts.show(opts.call(imported), human)


@db.command("list")
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind.")
@click.pass_obj
def db_list(opts: "Options", kind: str | None) -> None:
    """List databases with their status and masked connection."""

    async def listing(api: ApiClient) -> JsonObject:
        return await api.get("/dependency-resources", {"limit": LIMIT, "kind": kind})

    def human(data: JsonObject) -> None:
        empty = "No databases: create one with 'berth db create KIND NAME ...'."
        render.table(objects(data, "items"), DB_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


@db.command("show")
@click.argument("database")
@click.pass_obj
def db_show(opts: "Options", database: str) -> None:
    """Show a database (id or name): status, connection, realization, delete blockers."""

    async def show(api: ApiClient) -> JsonObject:
        found = await _find_db(api, database)
        return await api.get(f"/dependency-resources/{segment(text(found, 'id'))}")

    def human(data: JsonObject) -> None:
        def at(path: str) -> object:
            return render.lookup(data, f"dependencyResource.{path}")

        blockers = at("deleteSafety.blockers") or []
        render.details(
            [
                ("ID", at("id")),
                ("Name", at("name")),
                ("Kind", at("kind")),
                ("Status", at("lifecycleStatus")),
                ("Source", at("sourceMode")),
                ("Server", at("serverId")),
                ("Image", at("image")),
                ("Connection", at("connection.maskedConnection")),
                ("Container", at("providerRealization.providerResourceHandle")),
                ("Failure", at("providerRealization.failureMessage")),
                ("Bound to", len(blockers) if isinstance(blockers, list) else 0),
                ("Created", at("createdAt")),
            ]
        )

    opts.show(opts.call(show), human)


@db.command("bind")
@click.argument("database")
@click.argument("res")
@click.option(
    "--as", "target_name", default="DATABASE_URL", show_default=True, help="Variable name."
)
@click.pass_obj
def db_bind(opts: "Options", database: str, res: str, target_name: str) -> None:
    """Bind DATABASE to resource RES: its next deployment gets the URL as --as."""

    async def bind(api: ApiClient) -> JsonObject:
        dependency = await _find_db(api, database)
        resource_id = text(await find_resource(api, res), "id")
        path = f"/resources/{segment(resource_id)}/dependency-bindings"
        body: JsonObject = {
            "dependencyResourceId": text(dependency, "id"),
            "targetName": target_name,
        }
        created = await api.post(path, body)
        return await api.get(f"{path}/{segment(text(created, 'id'))}")

    def human(data: JsonObject) -> None:
        at = render.lookup
        click.echo(f"Bound {at(data, 'binding.dependencyResourceName')} to "
                   f"{at(data, 'binding.resourceId')} as {at(data, 'binding.target.targetName')} "
                   f"({at(data, 'binding.id')}); redeploy the resource to use it.")  # fmt: skip

    opts.show(opts.call(bind), human)


@db.command("unbind")
@click.argument("database")
@click.argument("res")
@click.pass_obj
def db_unbind(opts: "Options", database: str, res: str) -> None:
    """Remove DATABASE's bindings from resource RES (the database is untouched)."""

    async def unbind(api: ApiClient) -> JsonObject:
        dependency_id = text(await _find_db(api, database), "id")
        resource_id = text(await find_resource(api, res), "id")
        path = f"/resources/{segment(resource_id)}/dependency-bindings"
        removed: list[str] = []
        for binding in objects(await api.get(path), "items"):
            if text(binding, "dependencyResourceId") == dependency_id:
                gone = await api.call("DELETE", f"{path}/{segment(text(binding, 'id'))}")
                removed.append(text(gone, "id"))
        if not removed:
            raise ClientError(f"{database!r} is not bound to {res!r}")
        return {"removed": removed}

    def human(data: JsonObject) -> None:
        removed = data.get("removed")
        names = ", ".join(map(str, removed)) if isinstance(removed, list) else ""
        click.echo(f"Removed binding(s) {names}.")

    opts.show(opts.call(unbind), human)


@db.command("delete")
@click.argument("database")
@click.option("--yes", is_flag=True, help="Do not ask (its data is deleted).")
@click.pass_obj
def db_delete(opts: "Options", database: str, yes: bool) -> None:
    """Delete a database and, when Berth runs it, its container and data (refused while bound)."""
    if not yes:
        click.confirm(f"Delete {database} and its data?", abort=True)

    async def delete(api: ApiClient) -> JsonObject:
        dependency_id = text(await _find_db(api, database), "id")
        return await api.call("DELETE", f"/dependency-resources/{segment(dependency_id)}")

    def human(data: JsonObject) -> None:
        click.echo(f"Deleted database {text(data, 'id')}.")

    opts.show(opts.call(delete), human)


COMMANDS: Final = (db,)
