"""Source archives: upload validation (nothing stored on failure), storage, token-bound download."""

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coordinator import archives
from coordinator.db import models
from tests.harness import Coordinator
from tests.unit.coordinator.support import Response, assert_error, audit_events, database_dump
from tests.unit.coordinator.test_projects_api import scoped_token
from tests.unit.coordinator.test_resources_api import create_resource, show, workspace

Member = tuple[str, bytes | None, dict[str, Any]]


def make_tar(*members: Member, compress: bool = True) -> bytes:
    """A tar (gzip unless ``compress`` is false) of ``(name, data, tarinfo attributes)``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, attrs in members:
            info = tarfile.TarInfo(name)
            for key, value in attrs.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buffer.getvalue()
    return gzip.compress(raw) if compress else raw


def folder() -> bytes:
    """A small, valid project folder with a subdirectory and an internal symlink."""
    return make_tar(
        ("web", None, {"type": tarfile.DIRTYPE}),
        ("web/Dockerfile", b"FROM scratch\n", {}),
        ("web/src", None, {"type": tarfile.DIRTYPE}),
        ("web/src/app.py", b"print('hi')\n", {}),
        ("web/current", None, {"type": tarfile.SYMTYPE, "linkname": "src/app.py"}),
        ("web/up", None, {"type": tarfile.SYMTYPE, "linkname": "../web/src"}),
    )


@pytest.fixture
async def rid(coordinator: Coordinator, admin_token: str) -> str:
    """An active resource."""
    project_id, environment_id = await workspace(coordinator, admin_token)
    return await create_resource(coordinator, admin_token, project_id, environment_id)


def archive_dir(coordinator: Coordinator) -> Path:
    return archives.archive_dir(coordinator.settings().data_dir)


def stored_files(coordinator: Coordinator) -> list[str]:
    """Every file under ``DATA_DIR/archives`` (temporary uploads included)."""
    directory = archive_dir(coordinator)
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def upload(
    coordinator: Coordinator,
    token: str,
    resource_id: str,
    data: bytes,
    headers: dict[str, str] | None = None,
) -> Response:
    """``POST /resources/{id}/source/archive`` with a raw body."""
    assert coordinator.http is not None
    async with coordinator.http.post(
        f"{coordinator.url}/resources/{resource_id}/source/archive",
        data=io.BytesIO(data),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/gzip",
            **(headers or {}),
        },
    ) as response:
        body: Any = await response.json(content_type=None)
        return response.status, body, dict(response.headers)


async def test_upload_stores_the_archive_and_sets_the_source(
    coordinator: Coordinator, admin_token: str, rid: str
) -> None:
    data = folder()
    status, body, _ = await upload(
        coordinator, admin_token, rid, data, headers={"X-Berth-Locator": "./web"}
    )
    assert status == 201, body
    assert set(body) == {"id", "sha256", "sizeBytes", "fileCount"}
    assert body["id"].startswith("arc_")
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["sizeBytes"] == len(data)
    assert body["fileCount"] == 2
    stored = archives.archive_path(coordinator.settings().data_dir, body["id"])
    assert stored.read_bytes() == data
    assert stored_files(coordinator) == [stored.name]

    source = (await show(coordinator, admin_token, rid))["source"]
    assert source == {
        "kind": "local-folder",
        "locator": "./web",
        "baseDirectory": ".",
        "metadata": {"archiveId": body["id"]},
    }
    row = await models.SourceArchive.get(id=body["id"])
    assert (row.resource_id, row.sha256, row.size_bytes, row.file_count, row.locator) == (
        rid,
        body["sha256"],
        len(data),
        2,
        "./web",
    )
    [event] = await audit_events(
        coordinator, admin_token, eventType="resource.source-archive-uploaded"
    )
    assert event["aggregateId"] == rid
    assert event["payload"]["archiveId"] == body["id"]
    assert event["payload"]["sha256"] == body["sha256"]

    # A second upload replaces the archive id and keeps the folder's other settings.
    status, second, _ = await upload(coordinator, admin_token, rid, data)
    assert status == 201, second
    source = (await show(coordinator, admin_token, rid))["source"]
    assert source["metadata"] == {"archiveId": second["id"]}
    assert source["locator"] == "./web"
    # The source may point back at the earlier archive of the same resource.
    status, _, _ = await coordinator.call(
        "POST",
        f"/resources/{rid}/source",
        token=admin_token,
        json={
            "source": {
                "kind": "local-folder",
                "locator": "./web",
                "metadata": {"archiveId": body["id"]},
            }
        },
    )
    assert status == 200


async def test_upload_above_the_app_body_limit_is_streamed(
    coordinator: Coordinator, admin_token: str, rid: str
) -> None:
    blob = os.urandom(3 * 1024 * 1024)  # incompressible: the upload is > 1 MiB on the wire
    data = make_tar(("big.bin", blob, {}))
    assert len(data) > 2 * 1024 * 1024
    status, body, _ = await upload(coordinator, admin_token, rid, data)
    assert status == 201, body
    assert body["sizeBytes"] == len(data)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1024):
        yield data[start : start + 1024]


async def test_upload_over_the_cap_is_refused_and_removed(
    coordinator: Coordinator, admin_token: str, rid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archives, "MAX_ARCHIVE_BYTES", 4096)
    data = make_tar(("big.bin", os.urandom(8192), {}))
    # Declared too large: refused before reading.
    assert_error(await upload(coordinator, admin_token, rid, data), 413, "payload_too_large")
    # Chunked (no Content-Length): refused while streaming.
    assert coordinator.http is not None
    async with coordinator.http.post(
        f"{coordinator.url}/resources/{rid}/source/archive",
        data=_chunks(data),
        headers={"Authorization": f"Bearer {admin_token}"},
    ) as response:
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "payload_too_large"
    assert stored_files(coordinator) == []
    assert not await models.SourceArchive.exists(resource_id=rid)


BAD_ARCHIVES: dict[str, tuple[bytes, str]] = {
    "not gzip": (b"just some text, not an archive", "not a gzip tar"),
    "plain tar": (make_tar(("a.txt", b"a", {}), compress=False), "not a gzip tar"),
    "gzip of text": (gzip.compress(b"hello " * 200), "not a gzip tar"),
    "truncated": (folder()[:60], "not a gzip tar"),
    "empty tar": (make_tar(), "empty"),
    "absolute path": (make_tar(("/etc/passwd", b"x", {})), "absolute"),
    "dot-dot": (make_tar(("web/../../evil", b"x", {})), "escapes"),
    "symlink absolute": (
        make_tar(("link", None, {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"})),
        "symlink",
    ),
    "symlink escape": (
        make_tar(("a/link", None, {"type": tarfile.SYMTYPE, "linkname": "../../outside"})),
        "symlink",
    ),
    "symlink chain": (
        make_tar(
            ("d", None, {"type": tarfile.DIRTYPE}),
            ("d/x", None, {"type": tarfile.SYMTYPE, "linkname": ".."}),
            ("d/y", None, {"type": tarfile.SYMTYPE, "linkname": "x/.."}),
        ),
        "symlink",
    ),
    "write through symlink": (
        make_tar(
            ("up", None, {"type": tarfile.SYMTYPE, "linkname": "."}),
            ("d", None, {"type": tarfile.DIRTYPE}),
            ("d/out", None, {"type": tarfile.SYMTYPE, "linkname": "../up/.."}),
        ),
        "symlink",
    ),
    "hard link escape": (
        make_tar(("h", None, {"type": tarfile.LNKTYPE, "linkname": "../etc/shadow"})),
        "hard link",
    ),
    "char device": (make_tar(("dev", None, {"type": tarfile.CHRTYPE})), "device"),
    "block device": (make_tar(("blk", None, {"type": tarfile.BLKTYPE})), "device"),
    "fifo": (make_tar(("pipe", None, {"type": tarfile.FIFOTYPE})), "device"),
    "empty body": (b"", "not a gzip tar"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
async def test_bad_archives_are_refused_and_nothing_is_stored(
    coordinator: Coordinator, admin_token: str, rid: str, case: str
) -> None:
    data, message = BAD_ARCHIVES[case]
    error = assert_error(await upload(coordinator, admin_token, rid, data), 400, "invalid_request")
    assert message in error["message"], error
    assert stored_files(coordinator) == []
    assert not await models.SourceArchive.exists(resource_id=rid)
    assert (await show(coordinator, admin_token, rid))["source"] is None
    events = await audit_events(coordinator, admin_token, aggregateId=rid)
    assert [e["eventType"] for e in events] == ["resource.created"]


def test_inspect_accepts_internal_links(tmp_path: Path) -> None:
    path = tmp_path / "ok.tar.gz"
    path.write_bytes(
        make_tar(
            ("a", None, {"type": tarfile.DIRTYPE}),
            ("a/f", b"x", {}),
            ("a/hard", None, {"type": tarfile.LNKTYPE, "linkname": "a/f"}),
            ("a/self", None, {"type": tarfile.SYMTYPE, "linkname": "."}),
            ("./b/c.txt", b"z", {}),
        )
    )
    assert archives.inspect_archive(path) == 2


async def test_upload_permissions_and_states(
    coordinator: Coordinator, admin_token: str, rid: str
) -> None:
    reader = await scoped_token(coordinator, admin_token, ["resources:read"])
    assert_error(await upload(coordinator, reader, rid, folder()), 403, "forbidden")
    assert_error(await upload(coordinator, admin_token, "res_missing", folder()), 404, "not_found")
    response = await upload(
        coordinator, admin_token, rid, folder(), headers={"X-Berth-Locator": "\u00e9" * 3}
    )
    assert_error(response, 400, "invalid_request")
    status, _, _ = await coordinator.call(
        "POST", f"/resources/{rid}/archive", token=admin_token, json={}
    )
    assert status == 200
    assert_error(await upload(coordinator, admin_token, rid, folder()), 409, "conflict")
    assert stored_files(coordinator) == []


async def _download(coordinator: Coordinator, archive_id: str, token: str | None) -> Response:
    assert coordinator.http is not None
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with coordinator.http.get(
        f"{coordinator.url}{archives.download_path(archive_id)}", headers=headers
    ) as response:
        raw = await response.read()
        body: Any = raw
        if response.content_type == "application/json":
            body = await response.json()
        return response.status, body, dict(response.headers)


async def test_download_requires_a_bound_unexpired_download_token(
    coordinator: Coordinator, admin_token: str, rid: str
) -> None:
    data = folder()
    status, first, _ = await upload(coordinator, admin_token, rid, data)
    assert status == 201
    status, second, _ = await upload(coordinator, admin_token, rid, make_tar(("x", b"x", {})))
    assert status == 201
    token = await archives.mint_download_token(first["id"], "srv_1", "dep_1")
    assert token.startswith("berth_dt_")

    status, body, headers = await _download(coordinator, first["id"], token)
    assert status == 200
    assert body == data  # byte for byte: no transparent decompression
    assert headers["Content-Type"] == "application/gzip"
    assert "Content-Encoding" not in headers
    assert hashlib.sha256(body).hexdigest() == first["sha256"]
    row = await models.ArchiveDownloadToken.get(archive_id=first["id"])
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert (row.server_id, row.deployment_id) == ("srv_1", "dep_1")
    assert row.last_used_at is not None
    ttl = row.expires_at - row.created_at
    assert timedelta(minutes=29) < ttl <= timedelta(minutes=30)
    assert token not in await database_dump()

    for bad_token in (None, admin_token, "berth_dt_forged", token + "x"):
        assert_error(await _download(coordinator, first["id"], bad_token), 401, "unauthorized")
    # Bound to its archive: useless for another one.
    assert_error(await _download(coordinator, second["id"], token), 401, "unauthorized")
    await models.ArchiveDownloadToken.filter(id=row.id).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    error = assert_error(await _download(coordinator, first["id"], token), 401, "unauthorized")
    assert "expired" in error["message"]

    with pytest.raises(Exception, match="not found"):
        await archives.mint_download_token("arc_missing", "srv_1", "dep_1")


async def test_delete_resource_removes_its_archives(
    coordinator: Coordinator, admin_token: str, rid: str
) -> None:
    status, body, _ = await upload(coordinator, admin_token, rid, folder())
    assert status == 201
    token = await archives.mint_download_token(body["id"], "srv_1", "dep_1")
    status, _, _ = await coordinator.call(
        "DELETE",
        f"/resources/{rid}",
        token=admin_token,
        json={"confirmation": {"resourceSlug": "web-app"}},
    )
    assert status == 200
    assert stored_files(coordinator) == []
    assert not await models.SourceArchive.exists(id=body["id"])
    assert not await models.ArchiveDownloadToken.exists(archive_id=body["id"])
    assert_error(await _download(coordinator, body["id"], token), 401, "unauthorized")


async def test_delete_project_removes_its_resources_archives(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    resource_id = await create_resource(coordinator, admin_token, project_id, environment_id)
    status, body, _ = await upload(coordinator, admin_token, resource_id, folder())
    assert status == 201
    assert stored_files(coordinator) != []
    for path in (f"/resources/{resource_id}/archive", f"/projects/{project_id}/archive"):
        status, answer, _ = await coordinator.call("POST", path, token=admin_token, json={})
        assert status == 200, answer
    status, answer, _ = await coordinator.call(
        "DELETE",
        f"/projects/{project_id}",
        token=admin_token,
        json={"confirmation": {"projectId": project_id}},
    )
    assert status == 200, answer
    assert stored_files(coordinator) == []
    assert not await models.SourceArchive.exists(id=body["id"])
