"""Database lifecycle: tortoise configuration, migrations on start-up, and clean shutdown."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tortoise import Tortoise
from tortoise.migrations.api import migrate

MODELS_MODULE = "coordinator.db.models"
MONITORING_MODELS_MODULE = "coordinator.db.monitoring_models"
MIGRATIONS_MODULE = "coordinator.db.migrations"


def tortoise_config(database_url: str) -> dict[str, Any]:
    """Return the tortoise config for ``database_url`` (sqlite://PATH or postgres://...)."""
    return {
        "connections": {"default": database_url},
        "apps": {
            "models": {
                "models": [MODELS_MODULE, MONITORING_MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# Used by `tortoise makemigrations`; the URL only matters for the dialect of generated SQL.
TORTOISE_ORM = tortoise_config("sqlite://:memory:")


async def open_database(database_url: str) -> None:
    """Apply pending migrations, then open the connection pool for the app."""
    config = tortoise_config(database_url)
    # Migrations keep a user's data across upgrades; they run before anything reads tables.
    await migrate(config=config)
    await Tortoise.close_connections()
    await Tortoise.init(config=config)


async def close_database() -> None:
    """Close every connection."""
    await Tortoise.close_connections()


@asynccontextmanager
async def database(database_url: str) -> AsyncIterator[None]:
    """Open the database for the duration of the block."""
    await open_database(database_url)
    try:
        yield
    finally:
        await close_database()
