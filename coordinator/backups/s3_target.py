"""The S3-compatible backup target: artifacts encrypted on the coordinator, uploaded as a
multipart upload, one part in flight while the next fills (memory bounded by two parts), read
back as a stream.

The endpoint is an outbound target like a webhook's: its address is checked by the coordinator's
SSRF guard when the target is stored and on every connection (names are resolved through the
guard's resolver), so a bucket on a private or loopback address needs the operator's permission.
"""

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Final

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from coordinator.backups.artifacts import Opener, Sealer
from coordinator.backups.targets import ArtifactSink
from coordinator.outbound import OutboundGuard
from shared.errors import Unavailable

# S3's smallest part (except the last) is 5 MiB; 8 MiB parts keep requests few and memory small.
PART_BYTES: Final = 8 * 1024 * 1024
READ_BYTES: Final = 1024 * 1024
_ARTIFACT_SUFFIX: Final = ".berthbk"


class S3Failed(Unavailable):
    """The bucket refused or could not be reached (``unavailable``: worth retrying)."""


@dataclass(frozen=True)
class S3Location:
    """A bucket and where in it, with the credentials to use (the secret in clear: only built
    on the coordinator, just before a transfer)."""

    endpoint_url: str
    region: str
    bucket: str
    prefix: str
    access_key_id: str
    secret_access_key: str


def object_key(location: S3Location, backup_id: str) -> str:
    """The object's key: the target's prefix, then the backup id."""
    return f"{location.prefix}{backup_id}{_ARTIFACT_SUFFIX}"


def _failure(action: str, exc: Exception) -> S3Failed:
    return S3Failed(f"S3 {action} failed: {exc}"[:1000])


class _MultipartSink:
    def __init__(self, store: "S3Store", backup_id: str, key: bytes) -> None:
        self._store = store
        self._key = object_key(store.location, backup_id)
        self._sealer = Sealer(key, backup_id)
        self._buffer = bytearray(self._sealer.head())
        self._parts: list[dict[str, Any]] = []
        # The part being uploaded while the next one fills: the link is not held up by the
        # bucket's round trip (one in flight, so memory stays at two parts).
        self._in_flight: asyncio.Task[None] | None = None
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._upload_id: str | None = None

    @property
    def size(self) -> int:
        return self._sealer.size

    @property
    def plain_bytes(self) -> int:
        return self._sealer.plain_bytes

    async def start(self) -> None:
        self._client = await self._stack.enter_async_context(self._store.client())
        try:
            created = await self._client.create_multipart_upload(
                Bucket=self._store.location.bucket, Key=self._key
            )
        except (BotoCoreError, ClientError, OSError) as exc:
            await self._stack.aclose()
            raise _failure("upload", exc) from exc
        self._upload_id = created["UploadId"]

    async def _send_part(self) -> None:
        """Start uploading the buffer as the next part, once the part before it is in."""
        await self._settle()
        number = len(self._parts) + 1
        self._parts.append({"PartNumber": number})
        body = bytes(self._buffer)
        self._buffer.clear()
        self._in_flight = asyncio.get_running_loop().create_task(self._upload(number, body))

    async def _upload(self, number: int, body: bytes) -> None:
        try:
            sent = await self._client.upload_part(
                Bucket=self._store.location.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
        except (BotoCoreError, ClientError, OSError) as exc:
            raise _failure(f"upload of part {number}", exc) from exc
        self._parts[number - 1]["ETag"] = sent["ETag"]

    async def _settle(self) -> None:
        """Wait for the part in flight; its failure is the upload's."""
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await task

    async def add(self, plain: bytes) -> None:
        if plain:
            self._buffer += self._sealer.record(plain)
        if len(self._buffer) >= PART_BYTES:
            await self._send_part()

    async def finish(self) -> str:
        self._buffer += self._sealer.record(b"", last=True)
        await self._send_part()
        await self._settle()
        try:
            await self._client.complete_multipart_upload(
                Bucket=self._store.location.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        except (BotoCoreError, ClientError, OSError) as exc:
            raise _failure("upload completion", exc) from exc
        self._upload_id = None
        await self._stack.aclose()
        return self._sealer.sha256()

    async def discard(self) -> None:
        self._buffer.clear()
        task, self._in_flight = self._in_flight, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task  # its failure (if any) is why we discard; retrieved, not raised
        try:
            if self._upload_id is not None:
                await self._client.abort_multipart_upload(
                    Bucket=self._store.location.bucket, Key=self._key, UploadId=self._upload_id
                )
        except (BotoCoreError, ClientError, OSError):
            pass  # an unfinished upload is never an object; the bucket's lifecycle clears it
        finally:
            self._upload_id = None
            await self._stack.aclose()


class S3Store:
    """Artifacts as objects ``<prefix><backupId>.berthbk`` in an S3-compatible bucket."""

    kind = "s3"

    def __init__(self, location: S3Location, key: bytes, guard: OutboundGuard) -> None:
        self.location = location
        self._key = key
        self._guard = guard

    def client(self) -> Any:
        """A client whose connections go only to addresses the guard allows."""
        self._guard.check_url(self.location.endpoint_url, field_name="endpointUrl")
        config = AioConfig(
            s3={"addressing_style": "path"},
            connector_args={"resolver": self._guard.resolver()},
            retries={"max_attempts": 3, "mode": "standard"},
            # Both are required by recent botocore defaults that some S3-compatible servers
            # reject (e.g. CRC checksums on every upload).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return get_session().create_client(
            "s3",
            endpoint_url=self.location.endpoint_url,
            region_name=self.location.region,
            aws_access_key_id=self.location.access_key_id,
            aws_secret_access_key=self.location.secret_access_key,
            config=config,
        )

    def handle(self, backup_id: str) -> str:
        return f"s3://{self.location.bucket}/{object_key(self.location, backup_id)}"

    async def open_writer(self, backup_id: str) -> ArtifactSink:
        sink = _MultipartSink(self, backup_id, self._key)
        await sink.start()
        return sink

    async def read(self, backup_id: str, sha256: str) -> AsyncGenerator[bytes]:
        opener = Opener(self._key, backup_id, sha256)
        async with self.client() as client:
            try:
                got = await client.get_object(
                    Bucket=self.location.bucket, Key=object_key(self.location, backup_id)
                )
                body = got["Body"]
                async with body:
                    async for data in body.iter_chunks(READ_BYTES):
                        for plain in opener.feed(data):
                            yield plain
            except (BotoCoreError, ClientError, OSError) as exc:
                raise _failure("download", exc) from exc
        opener.end()

    async def delete(self, backup_id: str) -> None:
        async with self.client() as client:
            try:
                await client.delete_object(
                    Bucket=self.location.bucket, Key=object_key(self.location, backup_id)
                )
            except (BotoCoreError, ClientError, OSError) as exc:
                raise _failure("delete", exc) from exc

    async def exists(self, backup_id: str) -> bool:
        async with self.client() as client:
            try:
                await client.head_object(
                    Bucket=self.location.bucket, Key=object_key(self.location, backup_id)
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise _failure("lookup", exc) from exc
            except (BotoCoreError, OSError) as exc:
                raise _failure("lookup", exc) from exc
        return True
