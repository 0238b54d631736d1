"""``berth backup-targets``: S3-compatible buckets and server directories that database and
volume backups may be kept in (``berth db backup --target``, ``berth volumes backup --target``)."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from coordinator.client import render
from coordinator.client.http import ApiClient, ClientError, JsonObject, objects, text
from coordinator.client.workspace_cli import segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

COLUMNS: Final = (
    ("ID", "id"), ("NAME", "name"), ("KIND", "kind"), ("ENDPOINT", "endpointUrl"),
    ("BUCKET", "bucket"), ("PREFIX", "prefix"), ("ACCESS KEY", "accessKeyId"),
    ("SERVER", "serverId"), ("PATH", "path"),
)  # fmt: skip


@click.group("backup-targets")
def backup_targets() -> None:
    """Where backups are kept besides the coordinator's storage (S3-compatible buckets, server
    directories)."""


def _secret(secret_file: Path | None) -> str:
    # Never a command-line argument: it would land in shell history and the process list.
    if secret_file is not None:
        return secret_file.read_text().strip()
    return os.environ.get("BERTH_S3_SECRET_ACCESS_KEY") or str(
        click.prompt("S3 secret access key", hide_input=True)
    )


@backup_targets.command("add-s3")
@click.argument("name")
@click.option("--endpoint", required=True, help="http(s)://HOST[:PORT] of the S3 API.")
@click.option("--bucket", required=True, help="The bucket (it must exist).")
@click.option("--prefix", default="", help="Key prefix for Berth's objects, e.g. berth/prod.")
@click.option("--region", default="us-east-1", show_default=True, help="The bucket's region.")
@click.option("--access-key-id", required=True, help="Access key id.")
@click.option(
    "--secret-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the secret access key; default: $BERTH_S3_SECRET_ACCESS_KEY, else a prompt.",
)
@click.pass_obj
def targets_add_s3(
    opts: "Options",
    name: str,
    endpoint: str,
    bucket: str,
    prefix: str,
    region: str,
    access_key_id: str,
    secret_file: Path | None,
) -> None:
    """Add S3-compatible target NAME; the coordinator seals the secret and never shows it."""
    secret = _secret(secret_file)

    async def add(api: ApiClient) -> JsonObject:
        body: JsonObject = {
            "name": name,
            "kind": "s3",
            "endpointUrl": endpoint,
            "bucket": bucket,
            "prefix": prefix,
            "region": region,
            "accessKeyId": access_key_id,
            "secretAccessKey": secret,
        }
        answer = await api.post("/backup-targets", body)
        return await api.get(f"/backup-targets/{segment(text(answer, 'id'))}")

    opts.show(opts.call(add), lambda data: render.table([data], COLUMNS, empty=""))


@backup_targets.command("add-dir")
@click.argument("name")
@click.option("--server", "server_id", required=True, help="The server (id) keeping the files.")
@click.option(
    "--path",
    required=True,
    help="Absolute directory under one of that agent's BERTH_AGENT_BACKUP_DIRS.",
)
@click.pass_obj
def targets_add_dir(opts: "Options", name: str, server_id: str, path: str) -> None:
    """Add target NAME: a directory on a server, written by its agent (encrypted here first).

    The agent must be connected and allow the directory (BERTH_AGENT_BACKUP_DIRS); otherwise
    the coordinator refuses with the reason and the allowed directories."""

    async def add(api: ApiClient) -> JsonObject:
        body: JsonObject = {
            "name": name,
            "kind": "server-directory",
            "serverId": server_id,
            "path": path,
        }
        answer = await api.post("/backup-targets", body)
        return await api.get(f"/backup-targets/{segment(text(answer, 'id'))}")

    opts.show(opts.call(add), lambda data: render.table([data], COLUMNS, empty=""))


@backup_targets.command("list")
@click.pass_obj
def targets_list(opts: "Options") -> None:
    """List targets (secret keys masked)."""

    async def listing(api: ApiClient) -> JsonObject:
        return await api.get("/backup-targets")

    def human(data: JsonObject) -> None:
        empty = "No backup targets: add one with 'berth backup-targets add-s3' or 'add-dir'."
        render.table(objects(data, "items"), COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


@backup_targets.command("remove")
@click.argument("target_id")
@click.pass_obj
def targets_remove(opts: "Options", target_id: str) -> None:
    """Remove a target no kept backup lives in."""

    async def remove(api: ApiClient) -> JsonObject:
        return await api.call("DELETE", f"/backup-targets/{segment(target_id)}")

    opts.show(opts.call(remove), lambda _data: click.echo(f"Removed {target_id}."))


async def target_id(api: ApiClient, given: str) -> str:
    """The id of target ``given`` (an id or a name), for ``--target`` options."""
    try:
        listed = await api.get("/backup-targets")
    except ClientError:  # a token that may name targets but not list them: the id as given
        return given
    for item in objects(listed, "items"):
        if given in (item.get("id"), item.get("name")):
            return text(item, "id")
    return given  # unknown: the coordinator answers 404 naming backupTargetId


COMMANDS: Final = (backup_targets,)
