"""``berth db create|import|list|show|bind|unbind|delete`` against a coordinator and a real
agent that runs the local Redis image."""

from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest

from tests.db_images import db_images
from tests.harness import TEST_LABEL, TEST_SESSION, Coordinator, serving
from tests.integration.stacks import dependency_images, remove_session_objects, start_agent
from tests.integration.test_cli_workspace import Cli, make_resource

pytestmark = pytest.mark.docker

SECRET_URL = "postgres://shop:Cli-Secret-pw@db.example.com/shop"


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    images = db_images("redis")
    async with serving(
        tmp_path / "coordinator", database_url, **dependency_images(images)
    ) as harness:
        yield harness


@pytest.fixture
def cli(coordinator: Coordinator, admin_token: str, tmp_path: Path) -> Cli:
    return Cli(coordinator, admin_token, tmp_path / "config")


async def test_create_list_show_bind_unbind_delete(
    cli: Cli,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent, _ = await start_agent(cli.coordinator, admin_token, tmp_path / "agent", name="db-1")
    try:
        resource_id = await make_resource(cli)
        created = await cli.ok(
            "db", "create", "redis", "cache", "--project", "shop", "--env", "production",
            "--server", "db-1", "--memory-mb", "96",
        )  # fmt: skip
        assert "is ready" in created
        assert "redis://default:****@berth-dep-" in created
        monkeypatch.setenv("BERTH_DB_URL", SECRET_URL)
        imported = await cli.ok(
            "db", "import", "postgres", "orders", "--project", "shop", "--env", "production"
        )
        assert "postgres://shop:****@db.example.com/shop" in imported
        listed = await cli.json("db", "list")
        assert sorted(i["name"] for i in listed["items"]) == ["cache", "orders"]
        table = await cli.ok("db", "list", "--kind", "redis")
        assert "cache" in table
        assert "orders" not in table
        shown = await cli.ok("db", "show", "cache")
        assert "ready" in shown
        bound = await cli.ok("db", "bind", "orders", resource_id, "--as", "ORDERS_URL")
        assert "as ORDERS_URL" in bound
        refused = await cli("db", "delete", "orders", "--yes")
        assert refused.exit_code != 0
        assert "bound" in refused.output
        _ = await cli.ok("db", "unbind", "orders", resource_id)
        for name in ("orders", "cache"):
            assert "Deleted database" in await cli.ok("db", "delete", name, "--yes")
        assert (await cli.json("db", "list"))["items"] == []
        assert not docker_client.containers.list(
            all=True,
            filters={"label": ["berth.dependency-resource-id", f"{TEST_LABEL}={TEST_SESSION}"]},
        )
        assert "No databases" in await cli.ok("db", "list")
        assert SECRET_URL not in "".join([created, imported, table, shown, bound])
    finally:
        await agent.stop()
        remove_session_objects(docker_client)
