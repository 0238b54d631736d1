"""Fixtures shared by unit and integration tests: database URL, coordinator, docker guard."""

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import pytest
from tortoise import Tortoise
from tortoise.migrations.api import migrate

from coordinator.db import tortoise_config
from tests.docker_client import RaceTolerantDockerClient
from tests.edge_proxy import Caddy
from tests.harness import TEST_LABEL, TEST_SESSION, Coordinator, serving

REQUIRE_DOCKER = os.environ.get("BERTH_REQUIRE_DOCKER") == "1"

# A test suite started in the background by a non-interactive shell (`bash .ci/run &`) inherits
# SIGINT ignored, and so would every CLI the tests start and then interrupt with Ctrl-C: those
# tests would wait out their deadline. Python's own handler makes the children start with the
# default disposition again (a handler, unlike "ignored", does not survive exec).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


async def _reset_postgres(url: str) -> None:
    import asyncpg  # type: ignore[import-untyped]  # only the Postgres run needs it

    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with every migration applied, made once per test session.

    Applying the migrations costs 1.5-2.5 s per fresh file and most tests start a coordinator on
    a fresh database: each test copies this file instead, and the coordinator's own migration
    step finds nothing pending. tests/unit/test_migrations.py still checks the migrations.
    """
    path = tmp_path_factory.mktemp("migrated") / "berth.sqlite3"

    async def build() -> None:
        await migrate(config=tortoise_config(f"sqlite://{path}"))
        await Tortoise.close_connections()

    asyncio.run(build())
    return path


@pytest.fixture
async def database_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    """SQLite in the test's directory (a copy of the migrated file), or a freshly emptied Postgres
    (BERTH_TEST_DATABASE_URL)."""
    url = os.environ.get("BERTH_TEST_DATABASE_URL")
    if url:
        await _reset_postgres(url)
        return url
    target = tmp_path / "berth.sqlite3"
    shutil.copyfile(migrated_sqlite, target)
    return f"sqlite://{target}"


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """A running coordinator on 127.0.0.1 with a fresh database."""
    async with serving(tmp_path / "coordinator", database_url, ws_ping_seconds=5.0) as harness:
        yield harness


@pytest.fixture
async def admin_token(coordinator: Coordinator) -> str:
    """The first admin's API token."""
    return await coordinator.bootstrap()


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    """A Docker client; fails (never skips) when BERTH_REQUIRE_DOCKER=1 and Docker is missing."""
    try:
        client = RaceTolerantDockerClient.from_env(timeout=10)
        client.ping()
    except Exception as exc:
        if REQUIRE_DOCKER:
            pytest.fail(f"Docker is required (BERTH_REQUIRE_DOCKER=1) but unreachable: {exc}")
        pytest.skip(f"Docker engine not reachable: {exc}")
    try:
        yield client
    finally:
        _remove_session_objects(client)
        client.close()


def _remove_session_objects(client: docker.DockerClient) -> None:
    """Remove the containers and volumes this session's tests made (labelled with it)."""
    for container in client.containers.list(
        all=True, filters={"label": f"{TEST_LABEL}={TEST_SESSION}"}
    ):
        # An agent still winding down may remove it first (a task run's container, say):
        # gone already (404) or its removal in progress (409) both leave nothing behind.
        try:
            container.remove(force=True)
        except docker.errors.APIError as exc:
            if exc.status_code not in (404, 409):
                raise
    # Named volumes the agents created for storage volumes carry the same label.
    for volume in client.volumes.list(filters={"label": f"{TEST_LABEL}={TEST_SESSION}"}):
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove what this session left in Docker, also from tests that deployed through an agent
    without asking for ``docker_client`` (each such test's containers outlived it)."""
    if not _engine_listening():  # no Docker here: nothing can have been left in it
        return
    client = RaceTolerantDockerClient.from_env(timeout=10)
    try:
        _remove_session_objects(client)
    finally:
        client.close()


def _engine_listening() -> bool:
    """Whether the engine's socket takes a connection. Asked with a socket of our own: the
    SDK leaves the socket of a refused connection open (a ResourceWarning at exit)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a TCP engine: let the client find out
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(host.removeprefix("unix://"))
        except OSError:
            return False
    return True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that runs a real Caddy (the ``caddy`` fixture, directly or through
    another fixture): ``scripts/test.sh`` runs them again on the newer supported Caddy."""
    for item in items:
        if "caddy" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.caddy)


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
