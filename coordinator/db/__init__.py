"""Database lifecycle: tortoise configuration, migrations on start-up, and clean shutdown."""

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate

from coordinator.db.inline_reads import InlineReadClient

MODELS_MODULE = "coordinator.db.models"
MONITORING_MODELS_MODULE = "coordinator.db.monitoring_models"
TASK_MODELS_MODULE = "coordinator.db.task_models"
EDGE_MODELS_MODULE = "coordinator.db.edge_models"
MIGRATIONS_MODULE = "coordinator.db.migrations"
DEPENDENCY_MODELS_MODULE = "coordinator.db.dependency_models"
VOLUME_MODELS_MODULE = "coordinator.db.volume_models"
CERTIFICATE_MODELS_MODULE = "coordinator.db.certificate_models"
NOTIFICATION_MODELS_MODULE = "coordinator.db.notification_models"
ACCOUNT_MODELS_MODULE = "coordinator.db.account_models"
DEFAULT_ACCESS_MODELS_MODULE = "coordinator.db.default_access_models"
DNS01_MODELS_MODULE = "coordinator.db.dns01_models"
BACKUP_MODELS_MODULE = "coordinator.db.backup_models"
ORGANIZATION_MODELS_MODULE = "coordinator.db.organization_models"
VOLUME_BACKUP_MODELS_MODULE = "coordinator.db.volume_backup_models"
BACKUP_TARGET_MODELS_MODULE = "coordinator.db.backup_target_models"
VOLUME_POLICY_MODELS_MODULE = "coordinator.db.volume_policy_models"


# SQLite's page cache for the writer's connection, in KiB (SQLite's default is 2,000): the raw
# samples' indexes outgrow the default within minutes at 2,000 samples/s, and each insert then
# rereads index pages from the OS (measured: ~10 % of the insert cost at 900,000 rows).
SQLITE_CACHE_KIB = 65_536


def tortoise_config(database_url: str) -> dict[str, Any]:
    """Return the tortoise config for ``database_url`` (sqlite://PATH or postgres://...)."""
    connection: str | dict[str, Any] = database_url
    info = expand_db_url(database_url)
    if info["engine"] == "tortoise.backends.sqlite":
        # Tortoise issues every SQLite credential as a PRAGMA; a URL's own setting wins.
        info["credentials"].setdefault("cache_size", -SQLITE_CACHE_KIB)
        connection = info
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": [
                    MODELS_MODULE,
                    MONITORING_MODELS_MODULE,
                    TASK_MODELS_MODULE,
                    EDGE_MODELS_MODULE,
                    DEPENDENCY_MODELS_MODULE,
                    VOLUME_MODELS_MODULE,
                    CERTIFICATE_MODELS_MODULE,
                    NOTIFICATION_MODELS_MODULE,
                    ACCOUNT_MODELS_MODULE,
                    DEFAULT_ACCESS_MODELS_MODULE,
                    DNS01_MODELS_MODULE,
                    BACKUP_MODELS_MODULE,
                    ORGANIZATION_MODELS_MODULE,
                    VOLUME_BACKUP_MODELS_MODULE,
                    BACKUP_TARGET_MODELS_MODULE,
                    VOLUME_POLICY_MODELS_MODULE,
                ],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# Database drivers that ship as an optional extra: (tortoise engine, module, extra).
_OPTIONAL_DRIVERS = (("tortoise.backends.asyncpg", "asyncpg", "postgres"),)


def missing_driver(database_url: str) -> str | None:
    """Say what to install when ``database_url`` needs a driver that is not installed."""
    try:
        engine = expand_db_url(database_url)["engine"]
    except Exception:
        return None  # a malformed URL is reported where it is opened, as before
    for driver_engine, module, extra in _OPTIONAL_DRIVERS:
        if engine != driver_engine:
            continue
        try:
            importlib.import_module(module)
        except ImportError:
            return (
                f"BERTH_DATABASE_URL needs the {module} driver, which is not installed; "
                f"install it with: pip install 'berth[{extra}]'"
            )
    return None


# Used by `tortoise makemigrations`; the URL only matters for the dialect of generated SQL.
TORTOISE_ORM = tortoise_config("sqlite://:memory:")


# A second SQLite connection for read-only API queries. SQLite serialises everything on one
# connection, so without it a dashboard read waits behind the sample writer's transaction; in
# WAL mode a second connection reads the last commit while the writer writes. Short reads run
# on the event loop's thread (see ``inline_reads``). It is not a Tortoise "connection" (that
# would make every unnamed transaction ambiguous); reads pass it with ``using_db``.
# PostgreSQL's pool already gives reads their own connections.
_reads: BaseDBAsyncClient | None = None


async def open_database(database_url: str) -> None:
    """Apply pending migrations, then open the connection pool for the app."""
    global _reads  # one database per process, like Tortoise's own state
    config = tortoise_config(database_url)
    # Migrations keep a user's data across upgrades; they run before anything reads tables.
    await migrate(config=config)
    await Tortoise.close_connections()
    await Tortoise.init(config=config)
    info = expand_db_url(database_url)
    path = str(info["credentials"].get("file_path", ""))
    if info["engine"] == "tortoise.backends.sqlite" and path and path != ":memory:":
        _reads = InlineReadClient(file_path=path, connection_name="reads", journal_mode="WAL")


def read_connection() -> BaseDBAsyncClient:
    """The connection for read-only monitoring queries (never inside a transaction)."""
    return _reads if _reads is not None else Tortoise.get_connection("default")


async def close_database() -> None:
    """Close every connection."""
    global _reads
    if _reads is not None:
        await _reads.close()
        _reads = None
    await Tortoise.close_connections()


@asynccontextmanager
async def database(database_url: str) -> AsyncIterator[None]:
    """Open the database for the duration of the block."""
    await open_database(database_url)
    try:
        yield
    finally:
        await close_database()
