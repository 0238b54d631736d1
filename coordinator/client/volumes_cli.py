"""``berth volumes list|create|show|rename|attach|detach|cleanup|delete``: storage volumes."""

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

VOLUME_COLUMNS: Final = (
    ("ID", "id"), ("NAME", "name"), ("KIND", "kind"), ("SOURCE", "sourcePath"),
    ("SERVER", "serverId"), ("ATTACHED", "attachmentCount"), ("CREATED", "createdAt"),
)  # fmt: skip


async def _environment(api: ApiClient, ref: str) -> JsonObject:
    """``PROJECT/ENV`` (names, slugs or ids) to the environment item."""
    project_ref, slash, environment_ref = ref.partition("/")
    if not slash or not environment_ref:
        raise ClientError(f"{ref!r} is not PROJECT/ENV")
    project = await find_project(api, project_ref)
    return await find_environment(api, text(project, "id"), environment_ref)


async def _volume(api: ApiClient, ref: str) -> JsonObject:
    """A volume by id, or by name or slug when only one volume has it."""
    if ref.startswith("svol_"):
        shown = await api.get(f"/storage-volumes/{segment(ref)}")
        item = shown.get("storageVolume")
        if isinstance(item, dict):
            return item
    found = [
        v
        for v in objects(await api.get("/storage-volumes"), "items")
        if ref in (text(v, "id"), text(v, "name"), text(v, "slug"))
    ]
    if not found:
        raise ClientError(f"no storage volume named {ref!r} (see 'berth volumes list')")
    if len(found) > 1:
        raise ClientError(
            f"{len(found)} volumes are named {ref!r} ({', '.join(text(v, 'id') for v in found)}); "
            "use an id"
        )
    return found[0]


def _show_human(data: JsonObject) -> None:
    def at(path: str) -> object:
        return render.lookup(data, path)

    render.details(
        [
            ("ID", at("storageVolume.id")),
            ("Name", at("storageVolume.name")),
            ("Kind", at("storageVolume.kind")),
            ("Source", at("storageVolume.sourcePath")),
            ("Server", at("storageVolume.serverId") or "placed by its first deployment"),
            ("Project", at("storageVolume.projectId")),
            ("Environment", at("storageVolume.environmentId")),
            ("Created", at("storageVolume.createdAt")),
        ]
    )
    attachments = render.lookup(data, "storageVolume.attachments")
    items = [a for a in attachments if isinstance(a, dict)] if isinstance(attachments, list) else []
    render.table(
        items,
        (
            ("ATTACHMENT", "attachmentId"),
            ("RESOURCE", "resourceName"),
            ("PATH", "destinationPath"),
            ("MODE", "mountMode"),
            ("ATTACHED", "attachedAt"),
        ),
        empty="Not attached: 'berth volumes attach VOLUME RES PATH'.",
    )


@click.group()
def volumes() -> None:
    """Storage volumes: Docker named volumes and bind mounts, attached to resources."""


@volumes.command("list")
@click.option("--env", "env", help="Only this PROJECT/ENV's volumes.")
@click.pass_obj
def volumes_list(opts: "Options", env: str | None) -> None:
    """List storage volumes."""

    async def listing(api: ApiClient) -> JsonObject:
        query: dict[str, str | int | None] = {}
        if env is not None:
            environment = await _environment(api, env)
            query = {
                "projectId": text(environment, "projectId"),
                "environmentId": text(environment, "id"),
            }
        return await api.get("/storage-volumes", query)

    def human(data: JsonObject) -> None:
        empty = "No storage volumes: create one with 'berth volumes create PROJECT/ENV NAME'."
        render.table(objects(data, "items"), VOLUME_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


@volumes.command("create")
@click.argument("env")
@click.argument("name")
@click.option(
    "--bind",
    "bind",
    metavar="HOST_DIR",
    help="A bind mount of this host directory (it must lie under the agent's "
    "BERTH_AGENT_BIND_MOUNT_ROOTS) instead of a Docker named volume.",
)
@click.option("--server", help="The server it lives on (default: its first deployment's).")
@click.option("--description", help="Free text.")
@click.pass_obj
def volumes_create(
    opts: "Options",
    env: str,
    name: str,
    bind: str | None,
    server: str | None,
    description: str | None,
) -> None:
    """Create volume NAME in environment ENV (PROJECT/ENV)."""

    async def create(api: ApiClient) -> JsonObject:
        environment = await _environment(api, env)
        body: JsonObject = {
            "projectId": text(environment, "projectId"),
            "environmentId": text(environment, "id"),
            "name": name,
            "kind": "bind-mount" if bind else "named-volume",
        }
        if bind:
            body["sourcePath"] = bind
        if server:
            body["serverId"] = text(await find_server(api, server), "id")
        if description:
            body["description"] = description
        created = await api.post("/storage-volumes", body)
        return await api.get(f"/storage-volumes/{segment(text(created, 'id'))}")

    opts.show(opts.call(create), _show_human)


@volumes.command("show")
@click.argument("volume")
@click.pass_obj
def volumes_show(opts: "Options", volume: str) -> None:
    """Show a volume (id or name) and where it is attached."""

    async def show(api: ApiClient) -> JsonObject:
        found = await _volume(api, volume)
        return await api.get(f"/storage-volumes/{segment(text(found, 'id'))}")

    opts.show(opts.call(show), _show_human)


@volumes.command("rename")
@click.argument("volume")
@click.argument("name")
@click.pass_obj
def volumes_rename(opts: "Options", volume: str, name: str) -> None:
    """Rename a volume (attachments and data unchanged)."""

    async def rename(api: ApiClient) -> JsonObject:
        volume_id = segment(text(await _volume(api, volume), "id"))
        _ = await api.post(f"/storage-volumes/{volume_id}/rename", {"name": name})
        return await api.get(f"/storage-volumes/{volume_id}")

    opts.show(opts.call(rename), _show_human)


@volumes.command("attach")
@click.argument("volume")
@click.argument("res")
@click.argument("path")
@click.option("--read-only", is_flag=True, help="Mount read-only (default read-write).")
@click.pass_obj
def volumes_attach(opts: "Options", volume: str, res: str, path: str, read_only: bool) -> None:
    """Mount VOLUME into resource RES at container PATH from its next deployment on."""

    async def attach(api: ApiClient) -> JsonObject:
        found = await _volume(api, volume)
        resource = await find_resource(api, res)
        _ = await api.post(
            f"/resources/{segment(text(resource, 'id'))}/storage-attachments",
            {
                "storageVolumeId": text(found, "id"),
                "destinationPath": path,
                "mountMode": "read-only" if read_only else "read-write",
            },
        )
        return await api.get(f"/storage-volumes/{segment(text(found, 'id'))}")

    opts.show(opts.call(attach), _show_human)


@volumes.command("detach")
@click.argument("volume")
@click.argument("res")
@click.option("--path", help="Only the attachment at this container path.")
@click.pass_obj
def volumes_detach(opts: "Options", volume: str, res: str, path: str | None) -> None:
    """Unmount VOLUME from resource RES from its next deployment on (the data stays)."""

    async def detach(api: ApiClient) -> JsonObject:
        found = await _volume(api, volume)
        resource_id = text(await find_resource(api, res), "id")
        attachments = [
            a
            for a in objects(found, "attachments")
            if text(a, "resourceId") == resource_id
            and (path is None or text(a, "destinationPath") == path.rstrip("/"))
        ]
        if not attachments:
            raise ClientError(f"{text(found, 'name')} is not attached to {res}")
        for attachment in attachments:
            _ = await api.call(
                "DELETE",
                f"/resources/{segment(resource_id)}/storage-attachments/"
                f"{segment(text(attachment, 'attachmentId'))}",
            )
        return await api.get(f"/storage-volumes/{segment(text(found, 'id'))}")

    opts.show(opts.call(detach), _show_human)


@volumes.command("cleanup")
@click.argument("volume")
@click.option("--apply", is_flag=True, help="Remove the Docker volumes (default: a dry run).")
@click.option("--server", help="The server to clean (default: the volume's).")
@click.pass_obj
def volumes_cleanup(opts: "Options", volume: str, apply: bool, server: str | None) -> None:
    """List (or with --apply remove) the Docker volumes holding VOLUME's data on its server."""

    async def cleanup(api: ApiClient) -> JsonObject:
        volume_id = segment(text(await _volume(api, volume), "id"))
        body: JsonObject = {"dryRun": not apply}
        if server:
            body["serverId"] = text(await find_server(api, server), "id")
        return await api.post(f"/storage-volumes/{volume_id}/runtime-cleanup", body)

    def human(data: JsonObject) -> None:
        render.table(
            objects(data, "candidates"),
            (("DOCKER VOLUME", "target"), ("ACTION", "action"), ("BLOCKED BY", "blockedReason")),
            empty="No Docker volume of it on this server.",
        )
        for warning in objects(data, "warnings"):
            render.warn(text(warning, "message"))
        if data.get("dryRun"):
            click.echo("Dry run: nothing removed.")

    opts.show(opts.call(cleanup), human)


@volumes.command("delete")
@click.argument("volume")
@click.pass_obj
def volumes_delete(opts: "Options", volume: str) -> None:
    """Delete an unattached volume's record (run 'cleanup --apply' first to remove its data)."""

    async def delete(api: ApiClient) -> JsonObject:
        volume_id = text(await _volume(api, volume), "id")
        return await api.call("DELETE", f"/storage-volumes/{segment(volume_id)}")

    def human(data: JsonObject) -> None:
        click.echo(f"Deleted storage volume {text(data, 'id')}.")

    opts.show(opts.call(delete), human)


COMMANDS: Final = (volumes,)
