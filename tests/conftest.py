"""Fixtures shared by unit and integration tests: database URL, coordinator, docker guard."""

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import pytest

from tests.edge_proxy import Caddy
from tests.harness import TEST_LABEL, TEST_SESSION, Coordinator

REQUIRE_DOCKER = os.environ.get("BERTH_REQUIRE_DOCKER") == "1"


async def _reset_postgres(url: str) -> None:
    import asyncpg  # type: ignore[import-untyped]  # only the Postgres run needs it

    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await connection.close()


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    """SQLite in the test's directory, or a freshly emptied Postgres (BERTH_TEST_DATABASE_URL)."""
    url = os.environ.get("BERTH_TEST_DATABASE_URL")
    if url:
        await _reset_postgres(url)
        return url
    return f"sqlite://{tmp_path / 'berth.sqlite3'}"


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """A running coordinator on 127.0.0.1 with a fresh database."""
    harness = Coordinator(tmp_path / "coordinator", database_url, ws_ping_seconds=5.0)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


@pytest.fixture
async def admin_token(coordinator: Coordinator) -> str:
    """The first admin's API token."""
    return await coordinator.bootstrap()


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    """A Docker client; fails (never skips) when BERTH_REQUIRE_DOCKER=1 and Docker is missing."""
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:
        if REQUIRE_DOCKER:
            pytest.fail(f"Docker is required (BERTH_REQUIRE_DOCKER=1) but unreachable: {exc}")
        pytest.skip(f"Docker engine not reachable: {exc}")
    try:
        yield client
    finally:
        for container in client.containers.list(
            all=True, filters={"label": f"{TEST_LABEL}={TEST_SESSION}"}
        ):
            # An agent still winding down may remove it first (a task run's container, say).
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        # Named volumes the agents created for storage volumes carry the same label.
        for volume in client.volumes.list(filters={"label": f"{TEST_LABEL}={TEST_SESSION}"}):
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)
        client.close()


@pytest.fixture
def caddy(tmp_path: Path) -> Iterator[Caddy]:
    """A running Caddy; fails (never skips) without the binary when BERTH_REQUIRE_DOCKER=1."""
    if shutil.which("caddy") is None:
        if REQUIRE_DOCKER:
            pytest.fail("caddy is required (BERTH_REQUIRE_DOCKER=1) but not installed")
        pytest.skip("caddy is not installed")
    server = Caddy(tmp_path / "caddy")
    server.start()
    try:
        yield server
    finally:
        server.stop()
