"""Backups into an S3-compatible target end to end: a real agent runs the local PostgreSQL
image, a real S3 server (moto's server mode) listens on loopback; rows are backed up into the
bucket (encrypted on the coordinator, uploaded in parts), the table dropped, restored from the
bucket, rows back; the object is ciphertext that only the operator's key opens; a target that is
in use cannot be deleted; an unreachable bucket fails the backup with a reason."""

from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest

from coordinator.backups.artifacts import ArtifactDamaged, Opener, load_key
from coordinator.db.backup_models import DependencyBackup
from tests.db_images import db_images
from tests.harness import Coordinator, eventually
from tests.integration.stacks import Workload, workload
from tests.integration.test_backups_e2e import (
    _cleanup,
    _count,
    _provision,
    _psql,
    _restore,
    _verify,
)
from tests.integration.test_cli_workspace import Cli
from tests.integration.test_volume_backups_e2e import (
    WRITER,
    _files,
    _restored,
    _settled as _volume_settled,
    _sh,
    _volume,
)
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, s3_server
from tests.unit.coordinator.support import assert_error, audit_events

pytestmark = pytest.mark.docker

BUCKET = "berth-backups"


@pytest.fixture
async def coordinator(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    harness = Coordinator(
        tmp_path / "coordinator",
        database_url,
        ws_ping_seconds=5.0,
        dependency_image_postgres=db_images("postgres")["postgres"],
        # The S3 server listens on loopback: the operator allows private targets.
        allow_private_webhook_targets=True,
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


@pytest.fixture
async def s3(tmp_path: Path) -> AsyncIterator[S3Server]:
    async with s3_server(tmp_path / "s3") as server:
        await server.create_bucket(BUCKET)
        yield server


async def _add_target(stack: Workload, s3: S3Server, name: str, endpoint: str) -> str:
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


async def _settled(stack: Workload, backup_id: str) -> dict[str, object]:
    async def done() -> bool:
        shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
        return bool(shown["backup"]["status"] != "pending")

    await eventually(done, timeout=120, what=f"backup {backup_id} to settle")
    shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
    return dict(shown["backup"])


async def test_postgres_backup_to_s3_restores_dropped_rows_and_is_ciphertext(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    s3: S3Server,
) -> None:
    stack = await workload(coordinator, admin_token, tmp_path / "agent", "sleep 3600")
    try:
        await _scenario(stack, coordinator, docker_client, s3)
        await _cli(stack, coordinator, s3, tmp_path)
    finally:
        await stack.agent.stop()
        _cleanup(docker_client)


async def _scenario(
    stack: Workload, coordinator: Coordinator, client: docker.DockerClient, s3: S3Server
) -> None:
    db = await _provision(stack, "Main DB")
    _psql(
        client,
        db,
        "create table items (n int primary key, label text);"
        "insert into items select g, md5(g::text) from generate_series(1, 5000) g",
    )
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
    target = await _add_target(stack, s3, "offsite", s3.endpoint_url)
    created = await stack.call(
        "POST", f"/dependency-resources/{db}/backups", {"backupTargetId": target}
    )
    backup = await _settled(stack, created["id"])
    assert backup["status"] == "ready", backup
    assert backup["target"] == "s3"
    assert backup["backupTargetId"] == target
    key_name = f"prod/db/{backup['id']}.berthbk"
    assert backup["providerArtifactHandle"] == f"s3://{BUCKET}/{key_name}"

    # The bucket holds ciphertext only; the coordinator's storage holds nothing of it.
    assert await s3.keys(BUCKET) == {key_name: backup["sizeBytes"]}
    stored = await s3.read(BUCKET, key_name)
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

    # Drop the table, restore from the bucket: the rows are back.
    _psql(client, db, "drop table items")
    attempt = await _restore(stack, str(backup["id"]), "ready")
    assert attempt["failureCode"] is None
    assert _count(client, db) == 5000
    # Verification reads the object from the bucket into a throwaway database.
    verification = await _verify(stack, str(backup["id"]), "passed")
    assert verification["rows"] == 5000

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
    gone = await _add_target(stack, s3, "nowhere", "http://127.0.0.1:9")
    created = await stack.call(
        "POST", f"/dependency-resources/{db}/backups", {"backupTargetId": gone}
    )
    failed = await _settled(stack, created["id"])
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
    stack = await workload(coordinator, admin_token, tmp_path / "agent", WRITER)
    try:
        volume_id = await _volume(stack, "data")
        await stack.call(
            "POST",
            f"/resources/{stack.resource_id}/storage-attachments",
            {"storageVolumeId": volume_id, "destinationPath": "/data"},
        )
        await stack.deploy()

        async def written() -> bool:
            return len(_files(docker_client, volume_id)) == 2

        await eventually(written, timeout=30, what="the app to write its files")
        original = _files(docker_client, volume_id)
        target = await _add_target(stack, s3, "offsite", s3.endpoint_url)
        created = await stack.call(
            "POST", f"/storage-volumes/{volume_id}/backups", {"backupTargetId": target}
        )
        backup = await _volume_settled(stack, created["id"])
        assert backup["target"] == "s3"
        key_name = f"prod/db/{backup['id']}.berthbk"
        assert backup["providerArtifactHandle"] == f"s3://{BUCKET}/{key_name}"
        stored = await s3.read(BUCKET, key_name)
        assert len(stored) == backup["sizeBytes"]
        assert b"19999\n20000" not in stored  # the archive's file content is not in clear

        _sh(docker_client, volume_id, "rm -rf /v/notes && echo changed > /v/a.txt")
        attempt = await _restored(stack, str(backup["id"]), {})
        assert attempt["status"] == "ready", attempt
        assert _files(docker_client, volume_id) == original
    finally:
        await stack.agent.stop()
        _cleanup(docker_client)
