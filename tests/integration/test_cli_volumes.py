"""``berth volumes ...`` end to end against a real coordinator."""

from pathlib import Path

import pytest

from tests.harness import Coordinator
from tests.integration.test_cli_workspace import Cli, make_resource


@pytest.fixture
def cli(coordinator: Coordinator, admin_token: str, tmp_path: Path) -> Cli:
    return Cli(coordinator, admin_token, tmp_path / "config")


async def test_create_list_show_attach_detach_delete(cli: Cli) -> None:
    resource_id = await make_resource(cli)
    created = await cli.json("volumes", "create", "shop/production", "uploads")
    volume = created["storageVolume"]
    assert volume["kind"] == "named-volume"
    assert volume["id"].startswith("svol_")
    bind = await cli.json("volumes", "create", "shop/production", "media", "--bind", "/srv/media")
    assert bind["storageVolume"]["sourcePath"] == "/srv/media"
    refused = await cli("volumes", "create", "shop/production", "root", "--bind", "/")
    assert refused.exit_code != 0
    assert "host's root" in refused.output

    out = await cli.ok("volumes", "list", "--env", "shop/production")
    assert "uploads" in out
    assert "media" in out
    attached = await cli.json("volumes", "attach", "uploads", resource_id, "/var/uploads")
    (attachment,) = attached["storageVolume"]["attachments"]
    assert (attachment["resourceId"], attachment["destinationPath"]) == (
        resource_id,
        "/var/uploads",
    )
    assert attachment["mountMode"] == "read-write"
    shown = await cli.ok("volumes", "show", "uploads")
    assert "/var/uploads" in shown
    assert "read-write" in shown

    blocked = await cli("volumes", "delete", "uploads")
    assert blocked.exit_code != 0
    assert "detach it first" in blocked.output
    detached = await cli.json("volumes", "detach", "uploads", "shop/production/web")
    assert detached["storageVolume"]["attachments"] == []
    assert "Deleted storage volume" in await cli.ok("volumes", "delete", "uploads")
    assert [v["name"] for v in (await cli.json("volumes", "list"))["items"]] == ["media"]
