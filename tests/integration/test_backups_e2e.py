"""Backups end to end: a real agent runs the local PostgreSQL image; rows are written, backed
up (pg_dump -Fc streamed over the agent link into an AES-GCM artifact on the coordinator), the
table dropped, restored, cloned into a second database; a damaged artifact is refused before
anything is replaced; link loss and a coordinator restart mid-backup end it failed with no
artifact."""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from coordinator.backups.artifacts import ArtifactDamaged, load_key, read_chunks
from coordinator.db.backup_models import DependencyBackup
from tests.db_images import db_images
from tests.harness import TEST_LABEL, TEST_SESSION, Coordinator, eventually
from tests.integration.stacks import Workload, workload
from tests.integration.test_cli_workspace import Cli
from tests.unit.coordinator.support import audit_events

pytestmark = pytest.mark.docker

ROWS = 5000
LOCK_SQL = "begin; lock table items in access exclusive mode; select pg_sleep(600)"


@pytest.fixture
def images() -> dict[str, str]:
    return db_images("postgres")


@pytest.fixture
async def coordinator(
    tmp_path: Path, database_url: str, images: dict[str, str]
) -> AsyncIterator[Coordinator]:
    harness = Coordinator(
        tmp_path / "coordinator",
        database_url,
        ws_ping_seconds=5.0,
        dependency_image_postgres=images["postgres"],
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


def _cleanup(client: docker.DockerClient) -> None:
    selector: dict[str, str | list[str] | bool] = {"label": f"{TEST_LABEL}={TEST_SESSION}"}
    for container in client.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for network in client.networks.list(filters=selector):
        network.remove()
    for volume in client.volumes.list(filters=selector):
        volume.remove(force=True)


async def _provision(stack: Workload, name: str, kind: str = "postgres") -> str:
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


def _psql(client: docker.DockerClient, dependency_id: str, sql: str) -> str:
    [container] = client.containers.list(
        filters={"label": f"berth.dependency-resource-id={dependency_id}"}
    )
    code, out = container.exec_run([*_login(container), "-v", "ON_ERROR_STOP=1", "-tAc", sql])
    assert isinstance(out, bytes)
    text = out.decode().strip()
    assert code == 0, text
    return text


def _login(container: Any) -> list[str]:
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    return ["psql", "-h", "/run/postgresql", "-U", env["POSTGRES_USER"], "-d", env["POSTGRES_DB"]]


def _count(client: docker.DockerClient, dependency_id: str) -> int:
    return int(_psql(client, dependency_id, "select count(*) from items"))


async def _backup(stack: Workload, dependency_id: str, want: str = "ready") -> dict[str, Any]:
    created = await stack.call("POST", f"/dependency-resources/{dependency_id}/backups", {})
    return await _settled(stack, created["id"], want)


async def _settled(stack: Workload, backup_id: str, want: str) -> dict[str, Any]:
    async def settled() -> bool:
        shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
        status = shown["backup"]["status"]
        assert status in ("pending", want), shown
        return bool(status == want)

    await eventually(settled, timeout=120, what=f"backup {backup_id} to be {want}")
    shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
    return dict(shown["backup"])


async def _restore(
    stack: Workload, backup_id: str, want: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    await stack.call(
        "POST",
        f"/dependency-resources/backups/{backup_id}/restore",
        {"acknowledgeDataOverwrite": True, **(body or {})},
    )

    async def done() -> bool:
        shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
        attempt = shown["backup"]["latestRestoreAttempt"]
        assert attempt["status"] in ("pending", want), attempt
        return bool(attempt["status"] == want)

    await eventually(done, timeout=120, what=f"the restore of {backup_id} to be {want}")
    shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
    return dict(shown["backup"]["latestRestoreAttempt"])


async def _verify(stack: Workload, backup_id: str, want: str) -> dict[str, Any]:
    await stack.call("POST", f"/dependency-resources/backups/{backup_id}/verify", {})

    async def done() -> bool:
        shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
        verification = shown["backup"]["verification"]
        assert verification["status"] in ("pending", want), verification
        return bool(verification["status"] == want)

    await eventually(done, timeout=180, what=f"the verification of {backup_id} to be {want}")
    shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
    return dict(shown["backup"]["verification"])


async def test_postgres_backup_restores_dropped_rows_clones_and_refuses_damage(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        await _scenario(stack, coordinator, docker_client, tmp_path / "config")
    finally:
        await stack.agent.stop()
        _cleanup(docker_client)


async def _scenario(
    stack: Workload, coordinator: Coordinator, client: docker.DockerClient, config_home: Path
) -> None:
    db = await _provision(stack, "Main DB")
    _psql(
        client,
        db,
        "create table items (n int primary key, label text);"
        "insert into items select g, md5(g::text) from generate_series(1, 5000) g",
    )
    backup = await _backup(stack, db)
    assert backup["dependencyKind"] == "postgres"
    assert backup["providerArtifactHandle"] == f"coordinator://backups/{backup['id']}"
    assert backup["latestRestoreAttempt"] is None
    assert len(backup["sha256"]) == 64
    assert backup["encryption"] == "aes-256-gcm"

    shown_db = await stack.call("GET", f"/dependency-resources/{db}")
    assert shown_db["dependencyResource"]["backupRelationship"]["retentionRequired"] is True

    # Encrypted at rest: the stored file is not a dump; only the operator's key opens it.
    data_dir = coordinator.settings().data_dir
    artifact = data_dir / "backups" / f"{backup['id']}.berthbk"
    assert artifact.stat().st_size == backup["sizeBytes"]
    assert b"PGDMP" not in artifact.read_bytes()
    key = load_key(data_dir / "backup.key")
    plain = b"".join(read_chunks(artifact, key, backup["id"], backup["sha256"]))
    assert plain.startswith(b"PGDMP")
    with pytest.raises(ArtifactDamaged):
        list(read_chunks(artifact, bytes(32), backup["id"], backup["sha256"]))
    assert not list((data_dir / "backups").glob("*.partial"))

    # Bad input changes nothing: no acknowledgement, unknown id, another tenant's backup.
    status, refused, _ = await coordinator.call(
        "POST",
        f"/dependency-resources/backups/{backup['id']}/restore",
        token=stack.token,
        json={"acknowledgeRuntimeNotRestarted": True},
    )
    assert status == 400, refused
    assert refused["error"]["code"] == "invalid_request"
    assert refused["error"]["details"]["field"] == "acknowledgeDataOverwrite"
    assert "requestId" in refused
    for method, path, body in (
        ("GET", "/dependency-resources/backups/dbk_unknown", None),
        (
            "POST",
            "/dependency-resources/backups/dbk_unknown/restore",
            {"acknowledgeDataOverwrite": True},
        ),
    ):
        status, missing, _ = await coordinator.call(method, path, token=stack.token, json=body)
        assert status == 404, missing
        assert missing["error"]["code"] == "not_found"
    owner = (await DependencyBackup.get(id=backup["id"])).organization_id
    await DependencyBackup.filter(id=backup["id"]).update(organization_id="org_other")
    for method, path, body in (
        ("GET", f"/dependency-resources/backups/{backup['id']}", None),
        (
            "POST",
            f"/dependency-resources/backups/{backup['id']}/restore",
            {"acknowledgeDataOverwrite": True},
        ),
    ):
        status, hidden, _ = await coordinator.call(method, path, token=stack.token, json=body)
        assert status == 404, hidden
    listed = await stack.call("GET", f"/dependency-resources/{db}/backups")
    assert listed["items"] == []
    await DependencyBackup.filter(id=backup["id"]).update(organization_id=owner)
    shown = (await stack.call("GET", f"/dependency-resources/{db}/backups?status=ready"))["items"]
    assert [b["id"] for b in shown] == [backup["id"]]
    assert (await stack.call("GET", f"/dependency-resources/backups/{backup['id']}"))["backup"][
        "latestRestoreAttempt"
    ] is None

    # Drop the table, restore: every row is back.
    _psql(client, db, "drop table items")
    attempt = await _restore(stack, backup["id"], "ready")
    assert attempt["failureCode"] is None
    assert _count(client, db) == ROWS
    assert (
        _psql(client, db, "select label from items where n = 7")
        == "8f14e45fceea167a5a36dedd4bea2543"
    )

    # Clone, through the CLI: restore into a second, new database.
    cli = Cli(coordinator, stack.token, config_home)
    clone = await _provision(stack, "Clone DB")
    restored = await cli.json("db", "restore", backup["id"], "--into", "Clone DB", "--yes")
    assert restored["backup"]["latestRestoreAttempt"]["status"] == "ready", restored
    assert _count(client, clone) == ROWS

    # Verification (CLI): restored into a throwaway database, counted, the throwaway removed.
    verified = await cli.json("db", "verify", backup["id"])
    verification = verified["backup"]["verification"]
    assert verification["status"] == "passed", verification
    assert (verification["tables"], verification["rows"]) == (1, ROWS), verification
    listing = await cli.ok("db", "backups", "Main DB")
    assert backup["id"] in listing
    assert "passed" in listing
    assert str(ROWS) in listing
    assert not client.containers.list(
        all=True, filters={"label": f"berth.backup-verification={backup['id']}"}
    )

    # A damaged artifact: refused before anything is replaced (the added row stays).
    _psql(client, db, "insert into items values (0, 'after the backup')")
    raw = bytearray(artifact.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    artifact.write_bytes(bytes(raw))
    failed = await _restore(stack, backup["id"], "failed")
    assert failed["failureCode"] == "artifact-damaged", failed
    assert _count(client, db) == ROWS + 1
    [container] = client.containers.list(filters={"label": f"berth.dependency-resource-id={db}"})
    _, leftover = container.exec_run(["sh", "-c", "ls /tmp | grep berth-restore || true"])
    assert leftover == b""

    verification = await _verify(stack, backup["id"], "failed")
    assert verification["message"].startswith("artifact-damaged"), verification
    assert verification["rows"] is None
    assert not client.containers.list(
        all=True, filters={"label": f"berth.backup-verification={backup['id']}"}
    )

    events = [e["eventType"] for e in await audit_events(coordinator, stack.token, aggregateId=db)]
    assert events.count("dependency-resource.backup-requested") == 1
    assert events.count("dependency-resource.restore-requested") == 3
    assert events.count("dependency-resource.backup-verification-requested") == 2
    taken = await cli.json("db", "backup", "Main DB")
    assert taken["backup"]["status"] == "ready", taken


async def test_a_backup_cut_off_by_a_restart_or_a_lost_link_fails_without_an_artifact(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        db = await _provision(stack, "Locked DB")
        _psql(docker_client, db, "create table items (n int)")
        [container] = docker_client.containers.list(
            filters={"label": f"berth.dependency-resource-id={db}"}
        )
        # A transaction holding the table exclusively: pg_dump waits for it, mid-backup.
        container.exec_run(
            [*_login(container), "-c", LOCK_SQL],
            detach=True,
        )
        data_dir = coordinator.settings().data_dir

        async def dump_waits() -> bool:
            out = _psql(
                docker_client,
                db,
                "select count(*) from pg_stat_activity where application_name = 'pg_dump'"
                " and wait_event_type = 'Lock'",
            )
            return out == "1"

        # A coordinator restart mid-backup: the backup ends failed, no artifact.
        first = await stack.call("POST", f"/dependency-resources/{db}/backups", {})
        await eventually(dump_waits, timeout=60, what="pg_dump to wait for the lock")
        await coordinator.restart()
        shown = await _settled(stack, first["id"], "failed")
        # Shutdown closes the agent links before the runner is cancelled: the transfer fails
        # with the lost link; a crash would leave it pending, failed "interrupted" at start.
        assert shown["failureCode"] in ("unavailable", "interrupted"), shown
        assert shown["failureMessage"]
        assert shown["providerArtifactHandle"] is None

        # The agent's link lost mid-backup: failed with the reason, no artifact.
        await eventually(
            _connected(coordinator, stack.server_id), timeout=60, what="the agent back"
        )
        _psql(
            docker_client,
            db,
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where application_name = 'pg_dump'",
        )
        second = await stack.call("POST", f"/dependency-resources/{db}/backups", {})
        await eventually(dump_waits, timeout=60, what="pg_dump to wait for the lock again")
        await stack.agent.stop()
        shown = await _settled(stack, second["id"], "failed")
        assert shown["failureCode"] == "unavailable", shown
        assert shown["providerArtifactHandle"] is None
        assert shown["sizeBytes"] is None
        assert sorted(p.name for p in (data_dir / "backups").iterdir()) == []
    finally:
        await stack.agent.stop()
        _cleanup(docker_client)


def _connected(coordinator: Coordinator, server_id: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return coordinator.registry.get(server_id) is not None

    return check


async def test_mariadb_backup_restores_dropped_rows_and_verifies(
    tmp_path: Path, database_url: str, docker_client: docker.DockerClient
) -> None:
    image = db_images("mysql")["mysql"]
    harness = Coordinator(
        tmp_path / "coordinator", database_url, ws_ping_seconds=5.0, dependency_image_mysql=image
    )
    await harness.start()
    stack: Workload | None = None
    try:
        token = await harness.bootstrap()
        stack = await workload(harness, token, tmp_path / "agent", "sleep 3600")
        db = await _provision(stack, "Shop DB", kind="mysql")
        _maria(docker_client, db, MARIA_FILL)
        backup = await _backup(stack, db)
        assert backup["dependencyKind"] == "mysql"
        _maria(docker_client, db, "drop table items")
        await _restore(stack, backup["id"], "ready")
        assert _maria(docker_client, db, "select count(*), max(label) from items") == (
            f"{MARIA_ROWS}\trow-{MARIA_ROWS}"
        )
        verification = await _verify(stack, backup["id"], "passed")
        assert (verification["tables"], verification["rows"]) == (1, MARIA_ROWS), verification
        assert not docker_client.containers.list(
            all=True, filters={"label": f"berth.backup-verification={backup['id']}"}
        )
    finally:
        if stack is not None:
            await stack.agent.stop()
        _cleanup(docker_client)
        await harness.close()


MARIA_ROWS = 300
MARIA_FILL = (
    "create table items (n int primary key, label varchar(20));"
    "insert into items with recursive s(n) as (select 1 union all select n + 1 from s"
    " where n < 300) select n, concat('row-', lpad(n, 3, '0')) from s"
)


def _maria(client: docker.DockerClient, dependency_id: str, sql: str) -> str:
    [container] = client.containers.list(
        filters={"label": f"berth.dependency-resource-id={dependency_id}"}
    )
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    login = ["mariadb", "-h", "127.0.0.1", "-u", env["MARIADB_USER"], "-N", "-B"]
    code, out = container.exec_run(
        [*login, env["MARIADB_DATABASE"], "-e", sql],
        environment={"MYSQL_PWD": env["MARIADB_PASSWORD"]},
    )
    assert isinstance(out, bytes)
    text = out.decode().strip()
    assert code == 0, text
    return text
