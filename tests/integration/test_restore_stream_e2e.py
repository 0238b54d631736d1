"""Streamed restores end to end, real agent and real database containers: a PostgreSQL or
MariaDB restore feeds the dump straight into ``pg_restore``/``mariadb`` over an attached
``docker exec`` (the engine reports no archive extracted into the container, no dump file is
left), and a PostgreSQL restore cut off mid-stream by a damaged artifact replaces nothing."""

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from tests.harness import Coordinator, eventually
from tests.integration import backup_stacks as bk
from tests.integration.backup_stacks import LOCK_SQL, MARIA_FILL, MARIA_ROWS
from tests.integration.stacks import Workload

pytestmark = pytest.mark.docker

# ~6 MiB of random text: a dump of many agent chunks, so a damaged record lies mid-stream.
ROWS = 60_000
FILL = (
    "create table items (n int primary key, label text);"
    "insert into items select g, md5(random()::text) || md5(random()::text)"
    " || md5(random()::text) from generate_series(1, 60000) g"
)


def _actions(client: docker.DockerClient, container_id: str | None, since: float) -> list[str]:
    """The engine's events of the container since ``since`` (exec_start, extract-to-dir...)."""
    events = client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        filters={"container": str(container_id)},
        decode=True,
    )
    return [str(event.get("Action", "")) for event in events]


def _no_dump_left(container: Container) -> None:
    code, out = container.exec_run(
        ["sh", "-c", "find / -xdev -name 'berth-restore-*' 2>/dev/null; true"]
    )
    assert (code, out) == (0, b"")


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    async with bk.db_coordinator(tmp_path, database_url, "postgres", "mysql") as harness:
        yield harness


async def _backed_up(
    stack: Workload, client: docker.DockerClient, name: str
) -> tuple[str, dict[str, Any], Container]:
    """A PostgreSQL database ``name`` filled with ``FILL``, backed up; its id, the backup and
    its container."""
    db = await bk.provision(stack, name)
    bk.psql(client, db, FILL)
    backup = await bk.backup(stack, db)
    return db, backup, bk.db_container(client, db)


async def test_postgres_restore_streams_into_pg_restore_and_a_cut_off_one_replaces_nothing(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    async with bk.agent_stack(coordinator, admin_token, tmp_path, docker_client) as stack:
        db, backup, container = await _backed_up(stack, docker_client, "Big DB")

        # Dropped, restored: the dump went into pg_restore's stdin, never into the container.
        bk.psql(docker_client, db, "drop table items")
        started = time.time()
        await bk.restore(stack, backup["id"], "ready")
        assert bk.count(docker_client, db) == ROWS
        actions = _actions(docker_client, container.id, started)
        assert "extract-to-dir" not in actions, actions
        restores = [a for a in actions if a.startswith("exec_start: pg_restore")]
        assert len(restores) == 1, actions
        assert "--single-transaction" in restores[0]
        _no_dump_left(container)

        # Damage three quarters in: pg_restore had most of the dump (its --clean drops too)
        # when the input was cut off; its one transaction rolls back, the table stays whole.
        bk.psql(docker_client, db, "insert into items values (0, 'after the backup')")
        artifact = coordinator.settings().data_dir / "backups" / f"{backup['id']}.berthbk"
        raw = bytearray(artifact.read_bytes())
        assert len(raw) > 8 * 384 * 1024, len(raw)
        raw[len(raw) * 3 // 4] ^= 0xFF
        artifact.write_bytes(bytes(raw))
        started = time.time()
        failed = await bk.restore(stack, backup["id"], "failed")
        assert failed["failureCode"] == "artifact-damaged", failed
        assert bk.count(docker_client, db) == ROWS + 1
        assert "exec_start: pg_restore" in " ".join(_actions(docker_client, container.id, started))
        _no_dump_left(container)


async def test_mariadb_restore_streams_into_the_mariadb_client(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    async with bk.agent_stack(coordinator, admin_token, tmp_path, docker_client) as stack:
        db = await bk.provision(stack, "Shop DB", kind="mysql")
        bk.maria(docker_client, db, MARIA_FILL)
        backup = await bk.backup(stack, db)
        container = bk.db_container(docker_client, db)
        bk.maria(docker_client, db, "drop table items")
        started = time.time()
        await bk.restore(stack, backup["id"], "ready")
        assert bk.maria(docker_client, db, "select count(*) from items") == str(MARIA_ROWS)
        actions = _actions(docker_client, container.id, started)
        assert "extract-to-dir" not in actions, actions
        assert [a for a in actions if a.startswith("exec_start: mariadb -h")], actions
        _no_dump_left(container)


async def test_a_restore_cut_off_by_a_lost_link_fails_and_pg_restore_replaces_nothing(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    async with bk.agent_stack(coordinator, admin_token, tmp_path, docker_client) as stack:
        db, backup, container = await _backed_up(stack, docker_client, "Locked DB")
        bk.psql(docker_client, db, "insert into items values (0, 'after the backup')")
        # A transaction holding the table: pg_restore's --clean waits for it, so the dump
        # backs up (the agent's writes wait) with most of it still on the coordinator.
        container.exec_run([*bk.login(container), "-c", LOCK_SQL], detach=True)

        async def restore_waits() -> bool:
            return (
                bk.psql(
                    docker_client,
                    db,
                    "select count(*) from pg_stat_activity where application_name = 'pg_restore'"
                    " and wait_event_type = 'Lock'",
                )
                == "1"
            )

        await stack.call(
            "POST",
            f"/dependency-resources/backups/{backup['id']}/restore",
            {"acknowledgeDataOverwrite": True},
        )
        await eventually(restore_waits, timeout=60, what="pg_restore to wait for the lock")
        await stack.agent.stop()

        attempt = await bk.restore_settled(stack, backup["id"], "failed")
        assert attempt["failureCode"] == "unavailable", attempt
        assert attempt["failureMessage"], attempt

        # The lock released: pg_restore reads the rest of its input, finds it cut short, and
        # its one transaction rolls back: the table is as before the restore.
        bk.psql(
            docker_client,
            db,
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where query like '%pg_sleep%' and pid <> pg_backend_pid()",
        )

        async def restore_gone() -> bool:
            return (
                bk.psql(
                    docker_client,
                    db,
                    "select count(*) from pg_stat_activity where application_name = 'pg_restore'",
                )
                == "0"
            )

        await eventually(restore_gone, timeout=60, what="pg_restore to end")
        assert bk.count(docker_client, db) == ROWS + 1
        _no_dump_left(container)
