"""A local S3-compatible server for tests: moto's server mode on a free loopback port (state in
the process, gone when it stops), and a plain client to look at what the bucket holds."""

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from tests.edge_proxy import free_port
from tests.harness import eventually

ACCESS_KEY = "berth-test"
SECRET_KEY = "berth-test-secret-key"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    """Where the server answers."""

    endpoint_url: str

    def client(self) -> Any:
        """An aiobotocore S3 client for the test's own checks."""
        return get_session().create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=AioConfig(s3={"addressing_style": "path"}),
        )

    async def create_bucket(self, bucket: str) -> None:
        """Create ``bucket``."""
        async with self.client() as client:
            await client.create_bucket(Bucket=bucket)

    async def keys(self, bucket: str) -> dict[str, int]:
        """Every object key in ``bucket`` with its size."""
        async with self.client() as client:
            listed = await client.list_objects_v2(Bucket=bucket)
        return {item["Key"]: int(item["Size"]) for item in listed.get("Contents", [])}

    async def read(self, bucket: str, key: str) -> bytes:
        """One object's bytes (small test objects only)."""
        async with self.client() as client:
            got = await client.get_object(Bucket=bucket, Key=key)
            async with got["Body"] as body:
                return bytes(await body.read())


def _spawn(log_dir: Path, port: int) -> "subprocess.Popen[bytes]":
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "moto.log", "wb") as log:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _stop(process: "subprocess.Popen[bytes]") -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@asynccontextmanager
async def s3_server(log_dir: Path) -> AsyncIterator[S3Server]:
    """Start ``moto_server`` on loopback; stopped (and its state gone) afterwards."""
    port = free_port()
    process = _spawn(log_dir, port)
    server = S3Server(f"http://127.0.0.1:{port}")
    try:

        async def answering() -> bool:
            assert process.poll() is None, "moto_server exited (see moto.log)"
            try:
                async with server.client() as client:
                    await client.list_buckets()
            except Exception:
                return False
            return True

        await eventually(answering, timeout=30, what="moto_server to answer")
        yield server
    finally:
        _stop(process)
