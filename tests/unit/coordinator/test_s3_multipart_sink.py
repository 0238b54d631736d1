"""The S3 target's multipart upload keeps one part in flight while the next fills: parts keep
their numbers and order, a part that fails fails the backup at the next step, and a discarded
upload is aborted, never completed (a stand-in bucket client; the real one is in
tests/integration/test_backup_targets_e2e.py)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

from coordinator.backups.s3_target import PART_BYTES, S3Failed, S3Location, _MultipartSink

KEY = bytes(range(32))
LOCATION = S3Location("http://s3.test", "us-east-1", "bucket", "p/", "id", "secret")


class _Bucket:
    """Records the multipart calls; part ``fail`` is refused, part 1 waits for ``release``."""

    def __init__(self, fail: int | None = None) -> None:
        self.fail = fail
        self.release = asyncio.Event()
        self.first_started = asyncio.Event()
        self.started: list[int] = []
        self.sizes: dict[int, int] = {}
        self.completed: list[dict[str, Any]] | None = None
        self.aborted = False

    async def create_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {"UploadId": "u1"}

    async def upload_part(self, **call: Any) -> dict[str, str]:
        number = int(call["PartNumber"])
        self.started.append(number)
        if number == 1:
            self.first_started.set()
            await self.release.wait()
        if number == self.fail:
            raise ClientError({"Error": {"Code": "InternalError"}}, "UploadPart")
        self.sizes[number] = len(call["Body"])
        return {"ETag": f"e{number}"}

    async def complete_multipart_upload(self, **call: Any) -> None:
        self.completed = call["MultipartUpload"]["Parts"]

    async def abort_multipart_upload(self, **_: Any) -> None:
        self.aborted = True


class _Store:
    def __init__(self, bucket: _Bucket) -> None:
        self.location = LOCATION
        self._bucket = bucket

    @asynccontextmanager
    async def client(self) -> AsyncIterator[_Bucket]:
        yield self._bucket


async def _sink(bucket: _Bucket) -> _MultipartSink:
    sink = _MultipartSink(_Store(bucket), "dbk_1", KEY)  # type: ignore[arg-type]
    await sink.start()
    return sink


async def _add(sink: _MultipartSink, plain: bytes) -> None:
    """``sink.add`` that must not wait on a part still uploading (bounded, so a sink that does
    fails the test instead of hanging it)."""
    await asyncio.wait_for(sink.add(plain), 5)


async def test_the_next_part_fills_while_one_uploads_and_parts_complete_in_order() -> None:
    bucket = _Bucket()
    sink = await _sink(bucket)
    await _add(sink, b"x" * PART_BYTES)
    await asyncio.wait_for(bucket.first_started.wait(), 5)
    assert bucket.started == [1]  # part 1 is on its way and has not answered
    await _add(sink, b"y" * 1024)  # filling part 2 does not wait for it
    bucket.release.set()
    await sink.add(b"z" * PART_BYTES)  # part 2 waits for part 1, then goes
    sha256 = await sink.finish()
    assert bucket.started == [1, 2, 3]
    assert bucket.completed == [
        {"PartNumber": 1, "ETag": "e1"},
        {"PartNumber": 2, "ETag": "e2"},
        {"PartNumber": 3, "ETag": "e3"},
    ]
    assert sum(bucket.sizes.values()) == sink.size
    assert len(sha256) == 64
    assert not bucket.aborted


async def test_a_refused_part_fails_the_next_step_and_discard_aborts() -> None:
    bucket = _Bucket(fail=1)
    sink = await _sink(bucket)
    await _add(sink, b"x" * PART_BYTES)
    bucket.release.set()
    with pytest.raises(S3Failed, match="upload of part 1"):
        await sink.add(b"y" * PART_BYTES)
    await sink.discard()
    assert bucket.aborted
    assert bucket.completed is None


async def test_discard_with_a_part_in_flight_cancels_it_and_aborts() -> None:
    bucket = _Bucket()
    sink = await _sink(bucket)
    await _add(sink, b"x" * PART_BYTES)
    await asyncio.wait_for(bucket.first_started.wait(), 5)
    assert bucket.started == [1]
    await sink.discard()  # part 1 never answered: cancelled, not awaited forever
    assert bucket.aborted
    assert bucket.completed is None
