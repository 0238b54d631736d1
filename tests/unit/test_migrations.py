"""Schema changes go through migrations: the models and the migration files agree."""

import importlib
import sqlite3
from pathlib import Path

from tortoise import Tortoise
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate
from tortoise.migrations.autodetector import MigrationAutodetector

from coordinator.db import (
    close_database,
    migrations as migrations_package,
    models,
    open_database,
    tortoise_config,
)
from coordinator.db.organization_models import OrganizationMember


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


async def test_migration_0014_makes_every_user_a_member_and_admins_owners(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    url = f"sqlite://{path}"
    # Up to the migration before the one that adds memberships (found by content: the
    # integrator renumbers migrations when merging).
    folder = Path(migrations_package.__file__ or "").parent
    mine = next(p for p in sorted(folder.glob("0*.py")) if "organization_members" in p.read_text())
    module = importlib.import_module(f"{migrations_package.__name__}.{mine.stem}")
    (_, before), *_ = module.Migration.dependencies
    await migrate(config=tortoise_config(url), target=f"models.{before}")
    await Tortoise.close_connections()
    # A v1 database: one organization, its admin and a second (non-admin) user, in raw SQL as
    # the models already have 0014's columns.
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO organizations (id, name, slug, created_at) "
            "VALUES ('org_default', 'Default', 'default', '2026-01-01T00:00:00+00:00')"
        )
        for user_id, role in (("usr_0001", "admin"), ("usr_0002", "viewer")):
            db.execute(
                "INSERT INTO users (id, organization_id, email, display_name, role, created_at) "
                "VALUES (?, 'org_default', ?, 'X', ?, '2026-01-02T00:00:00+00:00')",
                (user_id, f"{user_id}@example.com", role),
            )
    await open_database(url)
    try:
        members = (
            await OrganizationMember.all()
            .order_by("user_id")
            .values_list("id", "organization_id", "user_id", "role")
        )
    finally:
        await close_database()
    assert members == [
        ("mem_0001", "org_default", "usr_0001", "owner"),
        ("mem_0002", "org_default", "usr_0002", "viewer"),
    ]
