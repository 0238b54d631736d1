"""Backups end to end: a real agent runs the local PostgreSQL image; rows are written, backed
up (pg_dump -Fc streamed over the agent link into an AES-GCM artifact on the coordinator), the
table dropped, restored, cloned into a second database; a damaged artifact is refused before
anything is replaced; link loss and a coordinator restart mid-backup end it failed with no
artifact."""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import docker
import pytest

from coordinator.backups.artifacts import ArtifactDamaged, load_key, read_chunks
from coordinator.db.backup_models import DependencyBackup
from tests.harness import Coordinator, eventually
from tests.integration import backup_stacks as bk
from tests.integration.backup_stacks import LOCK_SQL, MARIA_FILL, MARIA_ROWS, ROWS
from tests.integration.stacks import Workload
from tests.integration.test_cli_workspace import Cli
from tests.unit.coordinator.support import audit_events

pytestmark = pytest.mark.docker


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    async with bk.db_coordinator(tmp_path, database_url, "postgres") as harness:
        yield harness


async def test_postgres_backup_restores_dropped_rows_clones_and_refuses_damage(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    async with bk.agent_stack(coordinator, admin_token, tmp_path, docker_client) as stack:
        await _scenario(stack, coordinator, docker_client, tmp_path / "config")


async def _scenario(
    stack: Workload, coordinator: Coordinator, client: docker.DockerClient, config_home: Path
) -> None:
    db = await bk.filled_postgres(stack, client, "Main DB")
    backup = await bk.backup(stack, db)
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
    bk.psql(client, db, "drop table items")
    attempt = await bk.restore(stack, backup["id"], "ready")
    assert attempt["failureCode"] is None
    assert bk.count(client, db) == ROWS
    assert (
        bk.psql(client, db, "select label from items where n = 7")
        == "8f14e45fceea167a5a36dedd4bea2543"
    )

    # Clone, through the CLI: restore into a second, new database.
    cli = Cli(coordinator, stack.token, config_home)
    clone = await bk.provision(stack, "Clone DB")
    restored = await cli.json("db", "restore", backup["id"], "--into", "Clone DB", "--yes")
    assert restored["backup"]["latestRestoreAttempt"]["status"] == "ready", restored
    assert bk.count(client, clone) == ROWS

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
    bk.psql(client, db, "insert into items values (0, 'after the backup')")
    raw = bytearray(artifact.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    artifact.write_bytes(bytes(raw))
    failed = await bk.restore(stack, backup["id"], "failed")
    assert failed["failureCode"] == "artifact-damaged", failed
    assert bk.count(client, db) == ROWS + 1
    container = bk.db_container(client, db)
    _, leftover = container.exec_run(["sh", "-c", "ls /tmp | grep berth-restore || true"])
    assert leftover == b""

    verification = await bk.verify(stack, backup["id"], "failed")
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
    async with bk.agent_stack(coordinator, admin_token, tmp_path, docker_client) as stack:
        db = await bk.provision(stack, "Locked DB")
        bk.psql(docker_client, db, "create table items (n int)")
        container = bk.db_container(docker_client, db)
        # A transaction holding the table exclusively: pg_dump waits for it, mid-backup.
        container.exec_run(
            [*bk.login(container), "-c", LOCK_SQL],
            detach=True,
        )
        data_dir = coordinator.settings().data_dir

        async def dump_waits() -> bool:
            out = bk.psql(
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
        shown = await bk.settled(stack, first["id"], "failed")
        # Shutdown closes the agent links before the runner is cancelled: the transfer fails
        # with the lost link; a crash would leave it pending, failed "interrupted" at start.
        assert shown["failureCode"] in ("unavailable", "interrupted"), shown
        assert shown["failureMessage"]
        assert shown["providerArtifactHandle"] is None

        # The agent's link lost mid-backup: failed with the reason, no artifact.
        await eventually(
            _connected(coordinator, stack.server_id), timeout=60, what="the agent back"
        )
        bk.psql(
            docker_client,
            db,
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where application_name = 'pg_dump'",
        )
        second = await stack.call("POST", f"/dependency-resources/{db}/backups", {})
        await eventually(dump_waits, timeout=60, what="pg_dump to wait for the lock again")
        await stack.agent.stop()
        shown = await bk.settled(stack, second["id"], "failed")
        assert shown["failureCode"] == "unavailable", shown
        assert shown["providerArtifactHandle"] is None
        assert shown["sizeBytes"] is None
        assert sorted(p.name for p in (data_dir / "backups").iterdir()) == []


def _connected(coordinator: Coordinator, server_id: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return coordinator.registry.get(server_id) is not None

    return check


async def test_mariadb_backup_restores_dropped_rows_and_verifies(
    tmp_path: Path, database_url: str, docker_client: docker.DockerClient
) -> None:
    async with bk.db_coordinator(tmp_path, database_url, "mysql") as harness:
        token = await harness.bootstrap()
        async with bk.agent_stack(harness, token, tmp_path, docker_client) as stack:
            db = await bk.provision(stack, "Shop DB", kind="mysql")
            bk.maria(docker_client, db, MARIA_FILL)
            backup = await bk.backup(stack, db)
            assert backup["dependencyKind"] == "mysql"
            bk.maria(docker_client, db, "drop table items")
            await bk.restore(stack, backup["id"], "ready")
            assert bk.maria(docker_client, db, "select count(*), max(label) from items") == (
                f"{MARIA_ROWS}\trow-{MARIA_ROWS}"
            )
            verification = await bk.verify(stack, backup["id"], "passed")
            assert (verification["tables"], verification["rows"]) == (1, MARIA_ROWS), verification
            assert not docker_client.containers.list(
                all=True, filters={"label": f"berth.backup-verification={backup['id']}"}
            )
