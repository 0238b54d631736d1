"""Backup benchmark: a PostgreSQL database of ``--mb`` MiB backed up by Berth (pg_dump -Fc in the
database's container, pulled over the agent link, encrypted on the coordinator) and restored,
against ``pg_dump -Fc > file`` and ``pg_restore < file`` through ``docker exec`` on the same
host in the same run; and the real agent's resident memory growth during both.

A real coordinator (in this process, SQLite in a temp dir), a real agent process, the local
PostgreSQL image (scripts/build-db-images.sh). Printed: MB/s of each and the ratios
(target: backup >= 0.8 of pg_dump's throughput; agent RSS growth < 20 MiB).

    .venv/bin/python bench/backup.py --mb 256
    .venv/bin/python bench/backup.py --mb 256 --target server-directory
    .venv/bin/python bench/backup.py --mb 256 --target s3
    .venv/bin/python bench/backup.py --mb 256 --target s3 --s3-server s3rver

``--target server-directory`` keeps the artifact in a directory on the agent's server (written
by the same agent, so its RSS covers dumping and writing) instead of the coordinator's storage.
``--target s3`` keeps it in a local S3-compatible server (moto's server mode on loopback, as
the tests use; it holds objects in memory, and its own speed is part of the figure);
``--s3-server s3rver`` uses s3rver instead (Node.js, objects on disk; install it once with
``npm install --prefix ~/.cache/berth/s3rver s3rver@3.7.1``).
"""

import argparse
import asyncio
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import psutil
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from tests.db_images import db_images
from tests.edge_proxy import free_port
from tests.harness import Coordinator, eventually
from tests.integration import backup_stacks as bk
from tests.integration.stacks import Workload, remove_session_objects, workload
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, s3_server

MIB = 1024 * 1024
# ~100 bytes a row of random hex text (roughly what -Fc's compression halves).
FILL = (
    "create table items as select g as n, md5(random()::text) || md5(random()::text)"
    " || md5(random()::text) as label from generate_series(1, ROWS) g"
)


class Peak:
    """Samples a process's RSS every 20 ms in a thread while running; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self.before = self._proc.memory_info().rss
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> "Peak":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        """Peak minus the RSS before, in MiB."""
        return (self.peak - self.before) / MIB


async def _timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def _until(stack: Workload, backup_id: str, path: tuple[str, ...]) -> dict[str, Any]:
    async def done() -> bool:
        shown = await stack.call("GET", f"/dependency-resources/backups/{backup_id}")
        value: Any = shown["backup"]
        for key in path:
            value = value[key]
        if value == "failed":
            raise RuntimeError(f"{path} failed: {shown}")
        return bool(value == "ready")

    await eventually(done, timeout=3600, what=f"{backup_id} {'.'.join(path)}")
    return dict((await stack.call("GET", f"/dependency-resources/backups/{backup_id}"))["backup"])


S3_BUCKET = "berth-bench"
S3RVER = Path.home() / ".cache/berth/s3rver/node_modules/.bin/s3rver"
# s3rver 3.7 accepts this one access key, with the same secret.
S3RVER_KEY = "S3RVER"


@dataclass(frozen=True)
class _Bucket:
    endpoint_url: str
    access_key: str
    secret_key: str


@asynccontextmanager
async def _moto_bucket(workdir: Path) -> AsyncIterator[_Bucket]:
    async with s3_server(workdir / "s3") as server:
        await server.create_bucket(S3_BUCKET)
        yield _Bucket(server.endpoint_url, ACCESS_KEY, SECRET_KEY)


@asynccontextmanager
async def _s3rver_bucket(workdir: Path) -> AsyncIterator[_Bucket]:
    if not S3RVER.exists():
        raise SystemExit(f"no s3rver: npm install --prefix {S3RVER.parents[2]} s3rver@3.7.1")
    data = workdir / "s3rver"
    data.mkdir()
    port = free_port()
    command = [str(S3RVER), "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "--silent"]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    bucket = _Bucket(f"http://127.0.0.1:{port}", S3RVER_KEY, S3RVER_KEY)
    try:

        async def created() -> bool:
            assert process.returncode is None, "s3rver exited"
            session = get_session().create_client(
                "s3",
                endpoint_url=bucket.endpoint_url,
                region_name=REGION,
                aws_access_key_id=bucket.access_key,
                aws_secret_access_key=bucket.secret_key,
                config=AioConfig(s3={"addressing_style": "path"}),
            )
            try:
                async with session as client:
                    await client.create_bucket(Bucket=S3_BUCKET)
            except Exception:
                return False
            return True

        await eventually(created, timeout=30, what="s3rver to answer")
        yield bucket
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def run(args: argparse.Namespace, workdir: Path) -> None:
    image = db_images("postgres")["postgres"]
    client = docker.from_env()
    coordinator = Coordinator(
        workdir / "coordinator",
        None,
        dependency_image_postgres=image,
        # The S3 server listens on loopback: the operator allows private targets.
        allow_private_webhook_targets=args.target == "s3",
    )
    await coordinator.start()
    stack: Workload | None = None
    extras = AsyncExitStack()
    try:
        token = await coordinator.bootstrap()
        dirs = workdir / "server-backups"
        dirs.mkdir()
        env = {"BERTH_AGENT_BACKUP_DIRS": str(dirs.resolve())}
        stack = await workload(coordinator, token, workdir / "agent", "sleep 3600", agent_env=env)
        body: dict[str, Any] = {}
        if args.target == "server-directory":
            target = await stack.call(
                "POST",
                "/backup-targets",
                {
                    "name": "bench",
                    "kind": "server-directory",
                    "serverId": stack.server_id,
                    "path": str(dirs.resolve()),
                },
            )
            body = {"backupTargetId": target["id"]}
        elif args.target == "s3":
            chosen = _s3rver_bucket if args.s3_server == "s3rver" else _moto_bucket
            s3 = await extras.enter_async_context(chosen(workdir))
            target = await stack.call(
                "POST",
                "/backup-targets",
                {
                    "name": "bench",
                    "endpointUrl": s3.endpoint_url,
                    "region": REGION,
                    "bucket": S3_BUCKET,
                    "prefix": "bench",
                    "accessKeyId": s3.access_key,
                    "secretAccessKey": s3.secret_key,
                },
            )
            body = {"backupTargetId": target["id"]}
        db = await bk.provision(stack, "Bench DB")
        rows = args.mb * MIB // 100
        bk.psql(
            client,
            db,
            FILL.replace("ROWS", str(int(rows))),
        )
        size = int(bk.psql(client, db, "select pg_database_size(current_database())"))
        [container] = client.containers.list(
            filters={"label": f"berth.dependency-resource-id={db}"}
        )
        login = bk.login(container)[1:]  # psql's connection options, for pg_dump/pg_restore
        dump = workdir / "direct.dump"
        name = str(container.name)

        def direct_dump() -> None:
            with dump.open("wb") as out:
                subprocess.run(
                    ["docker", "exec", name, "pg_dump", "-Fc", *login],
                    stdout=out,
                    check=True,
                )

        def direct_restore() -> None:
            with dump.open("rb") as source:
                subprocess.run(
                    ["docker", "exec", "-i", name, "pg_restore", "--clean", "--if-exists", *login],
                    stdin=source,
                    check=True,
                )

        baseline_dump = await _timed(lambda: asyncio.to_thread(direct_dump))
        dump_bytes = dump.stat().st_size
        assert stack.agent.process is not None
        with Peak(stack.agent.process.pid) as backup_rss:
            created = await stack.call("POST", f"/dependency-resources/{db}/backups", body)
            berth_dump = await _timed(lambda: _until(stack, created["id"], ("status",)))
        shown = await stack.call("GET", f"/dependency-resources/backups/{created['id']}")
        berth_bytes = int(shown["backup"]["sizeBytes"])
        baseline_restore = await _timed(lambda: asyncio.to_thread(direct_restore))
        with Peak(stack.agent.process.pid) as restore_rss:
            await stack.call(
                "POST",
                f"/dependency-resources/backups/{created['id']}/restore",
                {"acknowledgeDataOverwrite": True},
            )
            berth_restore = await _timed(
                lambda: _until(stack, created["id"], ("latestRestoreAttempt", "status"))
            )
        server = f" ({args.s3_server})" if args.target == "s3" else ""
        print(f"target: {args.target}{server}")
        print(f"database: {size / MIB:.0f} MiB on disk, dump {dump_bytes / MIB:.1f} MiB (-Fc)")
        print(
            f"pg_dump -Fc > file (docker exec):  {baseline_dump:6.2f} s  "
            f"{size / MIB / baseline_dump:7.1f} MB/s of database"
        )
        print(
            f"Berth backup (encrypted, over the link): {berth_dump:6.2f} s  "
            f"{size / MIB / berth_dump:7.1f} MB/s  ratio {baseline_dump / berth_dump:.2f}"
            f"  (artifact {berth_bytes / MIB:.1f} MiB)"
        )
        print(f"pg_restore < file (docker exec):   {baseline_restore:6.2f} s")
        print(
            f"Berth restore:                     {berth_restore:6.2f} s  "
            f"ratio {baseline_restore / berth_restore:.2f}"
        )
        print(
            f"agent RSS: before {backup_rss.before / MIB:.1f} MiB, growth during backup "
            f"{backup_rss.growth_mib:.1f} MiB, restore {restore_rss.growth_mib:.1f} MiB"
        )
    finally:
        if stack is not None:
            await stack.agent.stop()
        remove_session_objects(client)
        await coordinator.close()
        await extras.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=1024, help="Table data to generate, MiB.")
    parser.add_argument(
        "--target",
        choices=("coordinator", "server-directory", "s3"),
        default="coordinator",
        help="Where the artifact is kept.",
    )
    parser.add_argument(
        "--s3-server",
        choices=("moto", "s3rver"),
        default="moto",
        help="The local S3-compatible server for --target s3.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-backup-") as raw:
        asyncio.run(run(args, Path(raw)))


if __name__ == "__main__":
    main()
