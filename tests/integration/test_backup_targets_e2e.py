"""Backups into an S3-compatible target end to end: a real agent runs the local PostgreSQL
image, a real S3 server (moto's server mode) listens on loopback; rows are backed up into the
bucket (encrypted on the coordinator, uploaded in parts), the table dropped, restored from the
bucket, rows back; the object is ciphertext that only the operator's key opens; a target that is
in use cannot be deleted; an unreachable bucket fails the backup with a reason."""

from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest

from coordinator.db.backup_models import DependencyBackup
from tests.harness import Coordinator
from tests.integration import backup_stacks as bk
from tests.integration.backup_stacks import BUCKET, WRITER
from tests.integration.stacks import Workload
from tests.integration.test_cli_workspace import Cli
from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server, s3_server
from tests.unit.coordinator.support import assert_error, audit_events

pytestmark = pytest.mark.docker


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    # The S3 server listens on loopback: the operator allows private targets.
    async with bk.db_coordinator(
        tmp_path, database_url, "postgres", allow_private_webhook_targets=True
    ) as harness:
        yield harness


@pytest.fixture
async def s3(tmp_path: Path) -> AsyncIterator[S3Server]:
    async with s3_server(tmp_path / "s3") as server:
        await server.create_bucket(BUCKET)
        yield server


async def test_postgres_backup_to_s3_restores_dropped_rows_and_is_ciphertext(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    s3: S3Server,
) -> None:
    async with bk.agent_stack(coordinator, admin_token, tmp_path, docker_client) as stack:
        await _scenario(stack, coordinator, docker_client, s3)
        await _cli(stack, coordinator, s3, tmp_path)


async def _scenario(
    stack: Workload, coordinator: Coordinator, client: docker.DockerClient, s3: S3Server
) -> None:
    db = await bk.filled_postgres(stack, client, "Main DB")
    # An unknown target (or another organization's) is a 404 naming the field; nothing written.
    error = assert_error(
        await coordinator.call(
            "POST",
            f"/dependency-resources/{db}/backups",
            token=stack.token,
            json={"backupTargetId": "bkt_unknown"},
        ),
        404,
        "not_found",
    )
    assert error["details"]["field"] == "backupTargetId"
    assert await DependencyBackup.filter(dependency_resource_id=db).count() == 0
    target = await bk.add_s3_target(stack, "offsite", s3.endpoint_url)
    backup = await bk.backup_to(stack, db, target)
    assert backup["status"] == "ready", backup
    assert backup["target"] == "s3"
    assert backup["backupTargetId"] == target
    key_name = f"prod/db/{backup['id']}.berthbk"
    assert backup["providerArtifactHandle"] == f"s3://{BUCKET}/{key_name}"

    # The bucket holds ciphertext only; the coordinator's storage holds nothing of it.
    assert await s3.keys(BUCKET) == {key_name: backup["sizeBytes"]}
    bk.assert_ciphertext_only(coordinator, backup, await s3.read(BUCKET, key_name))

    # Drop the table, restore from the bucket: the rows are back; verification reads the
    # object from the bucket into a throwaway database.
    await bk.restores_dropped_rows_and_verifies(stack, client, db, str(backup["id"]))

    # A target that keeps a backup cannot be deleted (409, nothing changed).
    assert_error(
        await coordinator.call("DELETE", f"/backup-targets/{target}", token=stack.token),
        409,
        "conflict",
    )
    events = await audit_events(coordinator, stack.token)
    [requested] = [
        e
        for e in events
        if e["eventType"] == "dependency-resource.backup-requested"
        and e["payload"].get("backupId") == backup["id"]
    ]
    assert requested["payload"]["backupTargetId"] == target
    assert SECRET_KEY not in str(events)

    # A bucket that cannot be reached fails the backup with a reason and leaves no object.
    gone = await bk.add_s3_target(stack, "nowhere", "http://127.0.0.1:9")
    failed = await bk.backup_to(stack, db, gone)
    assert failed["status"] == "failed", failed
    assert failed["failureCode"] == "unavailable"
    assert "S3" in str(failed["failureMessage"])
    assert await s3.keys(BUCKET) == {key_name: backup["sizeBytes"]}


async def _cli(stack: Workload, coordinator: Coordinator, s3: S3Server, tmp_path: Path) -> None:
    """``berth backup-targets add-s3`` (secret from a file, never shown), then
    ``berth db backup --target NAME`` lands in the bucket under the given prefix."""
    cli = Cli(coordinator, stack.token, tmp_path / "config")
    secret_file = tmp_path / "s3-secret"
    secret_file.write_text(SECRET_KEY + "\n")
    added = await cli.json(
        "backup-targets", "add-s3", "cli-bucket", "--endpoint", s3.endpoint_url,
        "--bucket", BUCKET, "--prefix", "from-cli", "--access-key-id", ACCESS_KEY,
        "--secret-file", str(secret_file),
    )  # fmt: skip
    assert added["secretAccessKey"] == "********"
    listing = await cli.ok("backup-targets", "list")
    assert "cli-bucket" in listing
    assert SECRET_KEY not in listing
    taken = await cli.json("db", "backup", "Main DB", "--target", "cli-bucket")
    assert taken["backup"]["status"] == "ready", taken
    assert taken["backup"]["backupTargetId"] == added["id"]
    assert f"from-cli/{taken['backup']['id']}.berthbk" in await s3.keys(BUCKET)


async def test_volume_backup_to_s3_restores_deleted_files(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    s3: S3Server,
) -> None:
    async with bk.agent_stack(coordinator, admin_token, tmp_path, docker_client, WRITER) as stack:
        volume_id, original = await bk.written_volume(stack, docker_client)
        target = await bk.add_s3_target(stack, "offsite", s3.endpoint_url)
        backup = await bk.volume_backup_to(stack, volume_id, target)
        assert backup["target"] == "s3"
        key_name = f"prod/db/{backup['id']}.berthbk"
        assert backup["providerArtifactHandle"] == f"s3://{BUCKET}/{key_name}"
        stored = await s3.read(BUCKET, key_name)
        assert len(stored) == backup["sizeBytes"]
        assert b"19999\n20000" not in stored  # the archive's file content is not in clear
        await bk.restores_deleted_files(
            stack, docker_client, volume_id, str(backup["id"]), original
        )
