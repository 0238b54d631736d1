"""Set-up the backup integration tests share: a coordinator running the local database images,
an agent stack cleaned up after the test, a provisioned (and filled) database, a named volume an
app wrote files into (read and changed by throwaway busybox containers), backup targets (S3
bucket / server directory), and waits until a backup, restore or verification settles."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from coordinator.backups.artifacts import ArtifactDamaged, Opener, load_key
from tests.db_images import db_images
from tests.harness import TEST_LABEL, TEST_SESSION, Coordinator, eventually
from tests.integration.stacks import (
    Workload,
    dependency_images,
    remove_session_objects,
    workload,
)
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY

ROWS = 5000
# 5000 rows whose labels are md5 hex: a dump that names "PGDMP" and "md5" when in clear.
ITEMS_FILL = (
    "create table items (n int primary key, label text);"
    "insert into items select g, md5(g::text) from generate_series(1, 5000) g"
)
LOCK_SQL = "begin; lock table items in access exclusive mode; select pg_sleep(600)"
MARIA_ROWS = 300
MARIA_FILL = (
    "create table items (n int primary key, label varchar(20));"
    "insert into items with recursive s(n) as (select 1 union all select n + 1 from s"
    " where n < 300) select n, concat('row-', lpad(n, 3, '0')) from s"
)
BUCKET = "berth-backups"
# The app writes two files (one in a folder) on its first start only, and keeps running.
WRITER = (
    "[ -f /data/a.txt ] || { mkdir -p /data/notes && echo first > /data/a.txt"
    " && seq 1 20000 > /data/notes/b.txt; }; "
    "trap 'exit 0' TERM; sleep 100000 & wait"
)


async def _volume(stack: Workload, name: str, **extra: str) -> str:
    """A new storage volume ``name`` (a named volume unless ``extra`` says) in the stack's
    environment; its id."""
    answer = await stack.call(
        "POST",
        "/storage-volumes",
        {
            "projectId": stack.project_id,
            "environmentId": stack.environment_id,
            "name": name,
            "kind": "named-volume",
            **extra,
        },
    )
    return str(answer["id"])


def _files(client: docker.DockerClient, volume_id: str) -> dict[str, str]:
    """Every file of the volume with its SHA-256 (read by a throwaway busybox container)."""
    out = client.containers.run(
        "berth-test/busybox",
        ["sh", "-c", "cd /v && find . -type f | sort | xargs -r sha256sum"],
        volumes={f"berth-{volume_id.lower()}": {"bind": "/v", "mode": "ro"}},
        remove=True,
    )
    assert isinstance(out, bytes)
    return {line.split()[1]: line.split()[0] for line in out.decode().splitlines()}


def _sh(client: docker.DockerClient, volume_id: str, script: str) -> None:
    """Run the shell ``script`` with the volume mounted read-write at /v."""
    client.containers.run(
        "berth-test/busybox",
        ["sh", "-c", script],
        volumes={f"berth-{volume_id.lower()}": {"bind": "/v", "mode": "rw"}},
        remove=True,
    )


async def _settled(stack: Workload, backup_id: str) -> dict[str, Any]:
    """Wait until the volume backup is ready (fail at once on any status but pending); show it."""

    async def settled() -> bool:
        shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
        assert shown["backup"]["status"] in ("pending", "ready"), shown
        return bool(shown["backup"]["status"] == "ready")

    await eventually(settled, timeout=120, what=f"volume backup {backup_id} to be ready")
    return dict((await stack.call("GET", f"/storage-volumes/backups/{backup_id}"))["backup"])


async def _restored(stack: Workload, backup_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Restore the volume backup (``body`` on top of the acknowledgement); wait until the
    attempt ends; the attempt."""
    await stack.call(
        "POST",
        f"/storage-volumes/backups/{backup_id}/restore",
        {"acknowledgeDataOverwrite": True, **body},
    )

    async def done() -> bool:
        shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
        return bool(shown["backup"]["latestRestoreAttempt"]["status"] != "pending")

    await eventually(done, timeout=120, what=f"the restore of {backup_id} to end")
    shown = await stack.call("GET", f"/storage-volumes/backups/{backup_id}")
    return dict(shown["backup"]["latestRestoreAttempt"])


def _leftovers(client: docker.DockerClient) -> list[str]:
    """This test session's volume helper containers and staging volumes still there (another
    session on the same engine, e.g. a developer's run beside CI, has its own)."""
    ours = f"{TEST_LABEL}={TEST_SESSION}"
    helpers = client.containers.list(all=True, filters={"label": ["berth.volume-helper", ours]})
    staging = [
        v.name
        for v in client.volumes.list(filters={"label": ours})
        if str(v.name).startswith("berth-vrs-")
    ]
    return [str(c.name) for c in helpers] + staging


@asynccontextmanager
async def db_coordinator(
    tmp_path: Path, database_url: str, *kinds: str, **settings: Any
) -> AsyncIterator[Coordinator]:
    """A started coordinator that runs each dependency kind of ``kinds`` from its locally built
    image (5 s link pings, so a lost agent shows soon); ``settings`` on top."""
    overrides: dict[str, Any] = {**dependency_images(db_images(*kinds)), **settings}
    harness = Coordinator(tmp_path / "coordinator", database_url, ws_ping_seconds=5.0, **overrides)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


@asynccontextmanager
async def agent_stack(
    coordinator: Coordinator,
    token: str,
    tmp_path: Path,
    client: docker.DockerClient,
    start_command: str = "sleep 3600",
    agent_env: dict[str, str] | None = None,
) -> AsyncIterator[Workload]:
    """``workload(...)`` with its agent state under ``tmp_path / "agent"``; afterwards the agent
    is stopped and the session's containers, networks and volumes removed."""
    stack = await workload(
        coordinator, token, tmp_path / "agent", start_command, agent_env=agent_env
    )
    try:
        yield stack
    finally:
        await stack.agent.stop()
        remove_session_objects(client)


async def provision(stack: Workload, name: str, kind: str = "postgres") -> str:
    """Plan and accept a new dependency resource of ``kind``; wait until it is ready; its id."""
    body = {
        "mode": "create",
        "create": {
            "kind": kind,
            "projectId": stack.project_id,
            "environmentId": stack.environment_id,
            "name": name,
            "serverId": stack.server_id,
        },
    }
    planned = await stack.call("POST", "/dependency-resources/provisioning/plan", body)
    accepted = await stack.call(
        "POST",
        f"/dependency-resources/provisioning/{planned['plan']['id']}/accept",
        {"acknowledgeMutation": True},
    )
    dependency_id = str(accepted["plan"]["dependencyResourceId"])

    async def ready() -> bool:
        shown = await stack.call("GET", f"/dependency-resources/{dependency_id}")
        status = shown["dependencyResource"]["lifecycleStatus"]
        assert status != "failed", shown
        return bool(status == "ready")

    await eventually(ready, timeout=120, what=f"database {name} to be ready")
    return dependency_id


async def filled_postgres(stack: Workload, client: docker.DockerClient, name: str) -> str:
    """A new PostgreSQL database ``name`` holding ``ITEMS_FILL``'s 5000 rows; its id."""
    db = await provision(stack, name)
    psql(client, db, ITEMS_FILL)
    return db


def db_container(client: docker.DockerClient, dependency_id: str) -> Container:
    """The one running container of the dependency resource."""
    [container] = client.containers.list(
        filters={"label": f"berth.dependency-resource-id={dependency_id}"}
    )
    return container


def psql(client: docker.DockerClient, dependency_id: str, sql: str) -> str:
    """Run ``sql`` in the PostgreSQL database (stop on the first error); its unaligned output."""
    container = db_container(client, dependency_id)
    code, out = container.exec_run([*login(container), "-v", "ON_ERROR_STOP=1", "-tAc", sql])
    assert isinstance(out, bytes)
    text = out.decode().strip()
    assert code == 0, text
    return text


def login(container: Any) -> list[str]:
    """``psql`` with the container's own socket, user and database."""
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    return ["psql", "-h", "/run/postgresql", "-U", env["POSTGRES_USER"], "-d", env["POSTGRES_DB"]]


def count(client: docker.DockerClient, dependency_id: str) -> int:
    """The rows of table ``items``."""
    return int(psql(client, dependency_id, "select count(*) from items"))


def maria(client: docker.DockerClient, dependency_id: str, sql: str) -> str:
    """Run ``sql`` in the MariaDB database; its tab-separated output without headers."""
    container = db_container(client, dependency_id)
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    command = ["mariadb", "-h", "127.0.0.1", "-u", env["MARIADB_USER"], "-N", "-B"]
    code, out = container.exec_run(
        [*command, env["MARIADB_DATABASE"], "-e", sql],
        environment={"MYSQL_PWD": env["MARIADB_PASSWORD"]},
    )
    assert isinstance(out, bytes)
    text = out.decode().strip()
    assert code == 0, text
    return text


async def shown_backup(stack: Workload, backup_id: str) -> dict[str, Any]:
    """The dependency backup as the API shows it."""
    shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
    return dict(shown["backup"])


async def backup(stack: Workload, dependency_id: str, want: str = "ready") -> dict[str, Any]:
    """Back up the database to the coordinator's storage; wait until it is ``want``."""
    created = await stack.call("POST", f"/dependency-resources/{dependency_id}/backups", {})
    return await settled(stack, created["id"], want)


async def settled(stack: Workload, backup_id: str, want: str) -> dict[str, Any]:
    """Wait until the backup is ``want`` (fail at once on any status but pending); show it."""

    async def done() -> bool:
        shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
        status = shown["backup"]["status"]
        assert status in ("pending", want), shown
        return bool(status == want)

    await eventually(done, timeout=120, what=f"backup {backup_id} to be {want}")
    return await shown_backup(stack, backup_id)


async def settle(stack: Workload, backup_id: str) -> dict[str, Any]:
    """Wait until the backup is no longer pending, whatever it became; show it."""

    async def done() -> bool:
        shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
        return bool(shown["backup"]["status"] != "pending")

    await eventually(done, timeout=120, what=f"backup {backup_id} to settle")
    return await shown_backup(stack, backup_id)


async def backup_to(stack: Workload, dependency_id: str, target_id: str) -> dict[str, Any]:
    """Back up the database into backup target ``target_id``; wait until it settles."""
    created = await stack.call(
        "POST", f"/dependency-resources/{dependency_id}/backups", {"backupTargetId": target_id}
    )
    return await settle(stack, created["id"])


async def restore(
    stack: Workload, backup_id: str, want: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Restore the backup (``body`` on top of the acknowledgement); wait until the attempt is
    ``want``; the attempt."""
    await stack.call(
        "POST",
        f"/dependency-resources/backups/{backup_id}/restore",
        {"acknowledgeDataOverwrite": True, **(body or {})},
    )
    return await restore_settled(stack, backup_id, want)


async def restore_settled(stack: Workload, backup_id: str, want: str) -> dict[str, Any]:
    """Wait until the backup's latest restore attempt is ``want`` (fail at once on any status
    but pending); the attempt."""

    async def done() -> bool:
        attempt = (await shown_backup(stack, backup_id))["latestRestoreAttempt"]
        assert attempt["status"] in ("pending", want), attempt
        return bool(attempt["status"] == want)

    await eventually(done, timeout=120, what=f"the restore of {backup_id} to be {want}")
    return dict((await shown_backup(stack, backup_id))["latestRestoreAttempt"])


async def verify(stack: Workload, backup_id: str, want: str) -> dict[str, Any]:
    """Verify the backup; wait until the verification is ``want``; the verification."""
    await stack.call("POST", f"/dependency-resources/backups/{backup_id}/verify", {})

    async def done() -> bool:
        verification = (await shown_backup(stack, backup_id))["verification"]
        assert verification["status"] in ("pending", want), verification
        return bool(verification["status"] == want)

    await eventually(done, timeout=180, what=f"the verification of {backup_id} to be {want}")
    return dict((await shown_backup(stack, backup_id))["verification"])


async def add_s3_target(stack: Workload, name: str, endpoint: str) -> str:
    """Add an S3 backup target for ``BUCKET`` under prefix ``prod/db`` at ``endpoint``; its id."""
    created = await stack.call(
        "POST",
        "/backup-targets",
        {
            "name": name,
            "endpointUrl": endpoint,
            "region": REGION,
            "bucket": BUCKET,
            "prefix": "prod/db",
            "accessKeyId": ACCESS_KEY,
            "secretAccessKey": SECRET_KEY,
        },
    )
    return str(created["id"])


async def add_dir_target(
    stack: Workload, name: str, path: Path | str, server_id: str | None = None
) -> str:
    """Add a server-directory backup target at ``path`` on ``server_id`` (the stack's server
    unless given); its id."""
    created = await stack.call(
        "POST",
        "/backup-targets",
        {
            "name": name,
            "kind": "server-directory",
            "serverId": server_id or stack.server_id,
            "path": str(path),
        },
    )
    return str(created["id"])


def assert_ciphertext_only(coordinator: Coordinator, backup: dict[str, Any], stored: bytes) -> None:
    """``stored`` (the artifact as a target keeps it) is ciphertext that the operator's key
    opens into a PostgreSQL dump and a wrong key refuses; the coordinator keeps no copy."""
    assert stored.startswith(b"BERTHBK1")
    assert b"PGDMP" not in stored
    assert b"md5" not in stored
    data_dir = coordinator.settings().data_dir
    assert not list((data_dir / "backups").glob(f"{backup['id']}*"))
    key = load_key(data_dir / "backup.key")
    opener = Opener(key, str(backup["id"]), str(backup["sha256"]))
    plain = b"".join(opener.feed(stored))
    opener.end()
    assert plain.startswith(b"PGDMP")
    with pytest.raises(ArtifactDamaged):
        Opener(bytes(32), str(backup["id"]), str(backup["sha256"])).feed(stored)


async def restores_dropped_rows_and_verifies(
    stack: Workload, client: docker.DockerClient, db: str, backup_id: str
) -> None:
    """Drop table ``items``, restore the backup: its 5000 rows are back; a verification (into
    a throwaway database) passes counting them."""
    psql(client, db, "drop table items")
    attempt = await restore(stack, backup_id, "ready")
    assert attempt["failureCode"] is None
    assert count(client, db) == 5000
    verification = await verify(stack, backup_id, "passed")
    assert verification["rows"] == 5000


async def attached(stack: Workload, volume_id: str) -> None:
    """Attach the volume at /data to the stack's resource and deploy it."""
    await stack.call(
        "POST",
        f"/resources/{stack.resource_id}/storage-attachments",
        {"storageVolumeId": volume_id, "destinationPath": "/data"},
    )
    await stack.deploy()


async def written_volume(
    stack: Workload, client: docker.DockerClient, volume_id: str | None = None
) -> tuple[str, dict[str, str]]:
    """A volume (``volume_id``, else a new one ``data``) attached at /data to the stack's
    (WRITER) resource, deployed, once the app wrote its files; the volume's id and its files."""
    volume_id = volume_id or await _volume(stack, "data")
    await attached(stack, volume_id)

    async def written() -> bool:
        return len(_files(client, volume_id)) == 2

    await eventually(written, timeout=30, what="the app to write its files")
    return volume_id, _files(client, volume_id)


async def volume_backup(stack: Workload, volume_id: str, **body: Any) -> dict[str, Any]:
    """Back up the storage volume (``body``: where to, whether to stop the app); wait until it is
    ready; show it."""
    created = await stack.call("POST", f"/storage-volumes/{volume_id}/backups", body)
    return await _settled(stack, created["id"])


async def volume_backup_to(stack: Workload, volume_id: str, target_id: str) -> dict[str, Any]:
    """Back up the storage volume into backup target ``target_id``; wait until it is ready."""
    return await volume_backup(stack, volume_id, backupTargetId=target_id)


async def restores_deleted_files(
    stack: Workload,
    client: docker.DockerClient,
    volume_id: str,
    backup_id: str,
    original: dict[str, str],
) -> None:
    """Delete and change the volume's files, restore the volume backup: the files are back."""
    _sh(client, volume_id, "rm -rf /v/notes && echo changed > /v/a.txt")
    attempt = await _restored(stack, backup_id, {})
    assert attempt["status"] == "ready", attempt
    assert _files(client, volume_id) == original
