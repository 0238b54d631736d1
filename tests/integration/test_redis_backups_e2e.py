"""Redis backups end to end: a real agent runs the local Redis image (AOF on, as Berth runs it);
keys are written, backed up (BGSAVE, the RDB streamed over the agent link into an AES-GCM
artifact), flushed and overwritten, restored (Redis restarted on the backup's data), verified
in a throwaway Redis, and a restore into a second Redis (a clone)."""

from pathlib import Path

import docker
import pytest

from tests.db_images import db_images
from tests.harness import Coordinator, eventually
from tests.integration import backup_stacks as bk
from tests.integration.stacks import Workload, remove_session_objects, workload

pytestmark = pytest.mark.docker

KEYS = 2000


def _redis(client: docker.DockerClient, dependency_id: str, *command: str) -> str:
    [container] = client.containers.list(
        filters={"label": f"berth.dependency-resource-id={dependency_id}"}
    )
    args = container.attrs["Config"]["Cmd"]
    password = args[args.index("--requirepass") + 1]
    code, out = container.exec_run(
        ["redis-cli", "-h", "127.0.0.1", "--no-auth-warning", *command],
        environment={"REDISCLI_AUTH": password},
    )
    assert isinstance(out, bytes)
    text = out.decode().strip()
    assert code == 0, text
    return text


def _fill(client: docker.DockerClient, dependency_id: str) -> None:
    [container] = client.containers.list(
        filters={"label": f"berth.dependency-resource-id={dependency_id}"}
    )
    args = container.attrs["Config"]["Cmd"]
    password = args[args.index("--requirepass") + 1]
    script = (
        f'for i in $(seq 1 {KEYS}); do echo "SET key:$i value-$i"; done'
        " | redis-cli -h 127.0.0.1 --no-auth-warning --pipe"
    )
    code, out = container.exec_run(["sh", "-c", script], environment={"REDISCLI_AUTH": password})
    assert code == 0, out


async def test_redis_backup_restores_flushed_keys_verifies_and_clones(
    tmp_path: Path, database_url: str, docker_client: docker.DockerClient
) -> None:
    image = db_images("redis")["redis"]
    harness = Coordinator(
        tmp_path / "coordinator", database_url, ws_ping_seconds=5.0, dependency_image_redis=image
    )
    await harness.start()
    stack: Workload | None = None
    try:
        token = await harness.bootstrap()
        stack = await workload(harness, token, tmp_path / "agent", "sleep 3600")
        db = await bk.provision(stack, "Cache", kind="redis")
        _fill(docker_client, db)
        assert _redis(docker_client, db, "DBSIZE") == str(KEYS)
        backup = await bk.backup(stack, db)
        assert backup["dependencyKind"] == "redis"
        assert backup["sizeBytes"] > 0

        # Lose everything, write something else: the restore brings back exactly the backup.
        _redis(docker_client, db, "FLUSHALL")
        _redis(docker_client, db, "SET", "after-backup", "1")
        attempt = await bk.restore(stack, backup["id"], "ready")
        assert attempt["failureCode"] is None
        assert _redis(docker_client, db, "DBSIZE") == str(KEYS)
        assert _redis(docker_client, db, "GET", "key:1234") == "value-1234"
        assert _redis(docker_client, db, "EXISTS", "after-backup") == "0"
        shown = await stack.call("GET", f"/dependency-resources/{db}")
        assert shown["dependencyResource"]["lifecycleStatus"] == "ready"
        # Redis keeps logging to the restored AOF: a write now survives a restart.
        _redis(docker_client, db, "SET", "after-restore", "1")
        [container] = docker_client.containers.list(
            filters={"label": f"berth.dependency-resource-id={db}"}
        )
        container.restart()
        await _wait_ping(docker_client, db)
        assert _redis(docker_client, db, "DBSIZE") == str(KEYS + 1)

        verification = await bk.verify(stack, backup["id"], "passed")
        assert (verification["tables"], verification["rows"]) == (1, KEYS), verification
        assert not docker_client.containers.list(
            all=True, filters={"label": f"berth.backup-verification={backup['id']}"}
        )

        clone = await bk.provision(stack, "Cache copy", kind="redis")
        await bk.restore(stack, backup["id"], "ready", {"targetDependencyResourceId": clone})
        assert _redis(docker_client, clone, "DBSIZE") == str(KEYS)
    finally:
        if stack is not None:
            await stack.agent.stop()
        remove_session_objects(docker_client)
        await harness.close()


async def _wait_ping(client: docker.DockerClient, dependency_id: str) -> None:
    async def answers() -> bool:
        try:
            return _redis(client, dependency_id, "PING") == "PONG"
        except AssertionError:
            return False

    await eventually(answers, timeout=30, what="Redis to answer after its restart")
