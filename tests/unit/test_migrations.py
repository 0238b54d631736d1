"""Schema changes go through migrations: the models and the migration files agree."""

from pathlib import Path

from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector

from coordinator.db import close_database, models, open_database, tortoise_config


async def test_models_have_no_unmigrated_changes() -> None:
    config = tortoise_config("sqlite://:memory:")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        assert ctx.apps is not None
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    assert writers == [], (
        "models changed without a migration: run "
        "'tortoise -c coordinator.db.TORTOISE_ORM makemigrations' and commit the file"
    )


async def test_reopening_a_database_keeps_its_data(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'db.sqlite3'}"
    await open_database(url)
    try:
        _ = await models.Organization.create(
            id="org_x", name="X", slug="x", created_at="2026-01-01T00:00:00Z"
        )
    finally:
        await close_database()
    await open_database(url)  # runs migrations again: already applied, nothing dropped
    try:
        assert await models.Organization.filter(id="org_x").count() == 1
    finally:
        await close_database()
