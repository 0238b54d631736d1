"""Archive inspection: bounded header walks, short refusals, links resolved inside the archive."""

import gzip
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from coordinator import archive_check, archives, tar_scan
from coordinator.client.packing import pack_folder
from shared.errors import InvalidRequest
from tests.harness import Coordinator
from tests.unit.coordinator.support import assert_error
from tests.unit.coordinator.test_resources_api import create_resource, workspace
from tests.unit.coordinator.test_source_archives import make_tar, stored_files

DIR = {"type": tarfile.DIRTYPE}


def sym(target: str) -> dict[str, Any]:
    return {"type": tarfile.SYMTYPE, "linkname": target}


def hard(target: str) -> dict[str, Any]:
    return {"type": tarfile.LNKTYPE, "linkname": target}


def block(name: str, kind: bytes, size: int) -> bytes:
    """One ustar header block declaring ``size`` bytes of payload (the payload is not added)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def pax(records: dict[str, str], kind: bytes = tarfile.XHDTYPE) -> bytes:
    """A pax extended (or global) header block plus its padded payload."""
    payload = b""
    for key, value in records.items():
        body = f" {key}={value}\n".encode()
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length = len(str(length)) + len(body)
        payload += str(length).encode() + body
    padding = -len(payload) % 512
    return block("././@PaxHeader", kind, len(payload)) + payload + b"\0" * padding


def huge_pax_archive(entries: int, path_bytes: int) -> bytes:
    """``entries`` small files, each renamed by a pax ``path`` of ``path_bytes`` bytes."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as tar:
        for index in range(entries):
            tar.write(pax({"path": f"{index}" + "a" * path_bytes}))
            tar.write(block(f"f{index}", tarfile.REGTYPE, 0))
        tar.write(b"\0" * 1024)
    return out.getvalue()


def inspect(tmp_path: Path, data: bytes) -> int:
    path = tmp_path / "upload.tar.gz"
    path.write_bytes(data)
    return archives.inspect_archive(path)


class Recording(io.BytesIO):
    """A stream that remembers the largest single read and the bytes handed out."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0
        self.total = 0

    def read(self, size: int | None = -1, /) -> bytes:
        assert size is not None, "the walker must never read to the end"
        assert size >= 0, "the walker must never read to the end"
        self.largest = max(self.largest, size)
        data = super().read(size)
        self.total += len(data)
        return data


# --- finding 2: memory and error size ---------------------------------------------------------


async def test_huge_pax_paths_are_refused_with_a_small_error(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    rid = await create_resource(coordinator, admin_token, project_id, environment_id)
    data = huge_pax_archive(8, 4 * 1024 * 1024)
    assert len(data) < 512 * 1024  # small on the wire, 32 MiB of names once unpacked
    assert coordinator.http is not None
    async with coordinator.http.post(
        f"{coordinator.url}/resources/{rid}/source/archive",
        data=data,
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/gzip"},
    ) as response:
        raw = await response.read()
        error = assert_error(
            (response.status, await response.json(), dict(response.headers)),
            400,
            "invalid_request",
        )
    assert "extended header" in error["message"], error
    assert len(raw) < 1024
    assert stored_files(coordinator) == []


@pytest.mark.parametrize("length", [200, 5000, 60_000])
async def test_a_refusal_quotes_a_short_name(
    coordinator: Coordinator, admin_token: str, length: int
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    rid = await create_resource(coordinator, admin_token, project_id, environment_id)
    # A GNU long name (tarfile's default format): ``..`` makes it a refusal either way.
    name = "../" + "n" * length
    data = make_tar((name, b"x", {}))
    assert coordinator.http is not None
    async with coordinator.http.post(
        f"{coordinator.url}/resources/{rid}/source/archive",
        data=data,
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/gzip"},
    ) as response:
        raw = await response.read()
        error = assert_error(
            (response.status, await response.json(), dict(response.headers)),
            400,
            "invalid_request",
        )
    assert len(raw) < 1024, len(raw)
    assert error["message"].startswith("archive member '../nnn")
    assert len(error["details"]["member"]) <= tar_scan.QUOTE_CHARS + 3


async def test_a_refused_name_that_is_not_utf8_is_answered_in_the_envelope(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    rid = await create_resource(coordinator, admin_token, project_id, environment_id)
    header = bytearray(block("x" * 8, tarfile.REGTYPE, 0))
    header[0:8] = b"../\xffab\xfe\0"  # undecodable bytes; the checksum is recomputed below
    header[148:156] = b" " * 8
    header[148:155] = f"{sum(header):06o}\0".encode()
    data = gzip.compress(bytes(header) + b"\0" * 1024)
    assert coordinator.http is not None
    async with coordinator.http.post(
        f"{coordinator.url}/resources/{rid}/source/archive",
        data=data,
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/gzip"},
    ) as response:
        error = assert_error(
            (response.status, await response.json(), dict(response.headers)),
            400,
            "invalid_request",
        )
    assert error["details"] == {"member": "../\\xffab\\xfe"}
    assert "escapes the archive root" in error["message"]


def test_an_oversized_extension_header_is_refused_before_its_payload_is_read() -> None:
    declared = 50 * 1024 * 1024
    stream = Recording(block("././@PaxHeader", tarfile.XHDTYPE, declared) + b"p" * 4096)
    with pytest.raises(InvalidRequest, match="extended header of 52428800 bytes"):
        list(tar_scan.walk(stream))
    assert stream.total == 512


def test_file_data_is_skipped_in_bounded_reads() -> None:
    blob = b"z" * (3 * tar_scan.CHUNK + 100)
    raw = make_tar(("big.bin", blob, {}), ("small", b"s", {}), compress=False)
    stream = Recording(raw)
    entries = list(tar_scan.walk(stream))
    assert [(e.name, e.size) for e in entries] == [("big.bin", len(blob)), ("small", 1)]
    assert stream.largest <= tar_scan.CHUNK


def test_names_and_link_targets_over_path_max_are_refused(tmp_path: Path) -> None:
    long = "d/" * 2100 + "f"
    with pytest.raises(InvalidRequest, match="over 4096 bytes") as refused:
        inspect(tmp_path, make_tar((long, b"x", {})))
    assert len(refused.value.message) < 200
    with pytest.raises(InvalidRequest, match="over 4096 bytes"):
        inspect(tmp_path, make_tar(("l", None, sym("x/" * 2100))))


def test_declared_sizes_are_bounded_before_data_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_check, "MAX_UNPACKED_BYTES", 10_000)
    # Nothing after the header: refused on the declared size, not on missing data.
    stream = Recording(block("big", tarfile.REGTYPE, 20_000))
    with pytest.raises(InvalidRequest, match="unpacks to more than"):
        archives.inspect_stream(stream)
    assert stream.total == 512


def test_member_count_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_check, "MAX_MEMBERS", 3)
    assert inspect(tmp_path, make_tar(*[(f"f{i}", b"", {}) for i in range(3)])) == 3
    with pytest.raises(InvalidRequest, match="more than 3 members"):
        inspect(tmp_path, make_tar(*[(f"f{i}", b"", {}) for i in range(4)]))


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (pax({"path": "a"}) + pax({"path": "b"}), "repeated"),
        (pax({"path": "elsewhere"}, tarfile.XGLTYPE), "renames members"),
        (pax({"GNU.sparse.size": "10"}), "sparse"),
        (pax({"size": "ten"}), "not a gzip tar"),
    ],
)
def test_extension_records_tarfile_would_read_ambiguously_are_refused(
    data: bytes, why: str
) -> None:
    raw = data + block("f", tarfile.REGTYPE, 0) + b"\0" * 1024
    with pytest.raises(InvalidRequest, match=why):
        archives.inspect_stream(io.BytesIO(raw))


def test_a_later_header_tarfile_would_stop_at_is_refused() -> None:
    second = bytearray(block("second", tarfile.REGTYPE, 0))
    second[136:148] = b"not-octal!!\0"  # mtime
    second[148:156] = b" " * 8
    second[148:155] = f"{sum(second):06o}\0".encode()
    raw = block("first", tarfile.REGTYPE, 0) + bytes(second) + b"\0" * 1024
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        assert [m.name for m in tar] == ["first"]  # tarfile silently ends the archive there
    with pytest.raises(InvalidRequest, match="not a gzip tar"):
        archives.inspect_stream(io.BytesIO(raw))


def test_a_global_header_that_renames_nothing_is_accepted() -> None:
    raw = pax({"mtime": "1"}, tarfile.XGLTYPE) + block("f", tarfile.REGTYPE, 0) + b"\0" * 1024
    assert archives.inspect_stream(io.BytesIO(raw)) == 1


def test_walker_reads_names_as_tarfile_does(tmp_path: Path) -> None:
    long_dir = "deep/" + "x" * 120
    members = [
        (long_dir, None, DIR),
        (f"{long_dir}/" + "y" * 150, b"yy", {}),
        ("short.txt", b"s", {}),
        ("\u00e9t\u00e9.txt", b"e", {}),
        ("ln", None, sym("y" * 130)),
        ("hl", None, hard("short.txt")),
    ]
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
            for name, data, attrs in members:
                if fmt == tarfile.USTAR_FORMAT and (len(name) > 255 or "\u00e9" in name):
                    continue
                if fmt == tarfile.USTAR_FORMAT and len(attrs.get("linkname", "")) > 100:
                    continue
                info = tarfile.TarInfo(name)
                for key, value in attrs.items():
                    setattr(info, key, value)
                info.size = len(data or b"")
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        raw = buffer.getvalue()
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            expected = [(m.name, m.linkname, m.size) for m in tar]
        walked = [(e.name, e.linkname, e.size) for e in tar_scan.walk(io.BytesIO(raw))]
        assert walked == expected, fmt


# --- finding 7: links resolved against the archive's own entries ------------------------------

LINK_ESCAPES: dict[str, tuple[bytes, str]] = {
    "member written through a symlink": (
        make_tar(("d", None, DIR), ("s", None, sym("d")), ("s/f", b"x", {})),
        "through a symlink",
    ),
    "symlink over a directory already written to": (
        make_tar(("d/f", b"x", {}), ("d", None, sym("."))),
        "other members are written through",
    ),
    "hard link through a symlink": (
        make_tar(
            ("d", None, DIR), ("d/f", b"x", {}), ("s", None, sym("d")), ("h", None, hard("s/f"))
        ),
        "through a symlink",
    ),
    "hard link through a symlink and back out": (
        make_tar(("f", b"x", {}), ("s", None, sym("d")), ("h", None, hard("s/../f"))),
        "through a symlink",
    ),
    "hard link to a missing member": (make_tar(("h", None, hard("nothing"))), "missing"),
    "hard link to a later member": (
        make_tar(("h", None, hard("f")), ("f", b"x", {})),
        "missing",
    ),
    "hard link to a symlink": (
        make_tar(("f", b"x", {}), ("s", None, sym("f")), ("h", None, hard("s"))),
        "not a regular file",
    ),
    "hard link to a hard link": (
        make_tar(("f", b"x", {}), ("h1", None, hard("f")), ("h2", None, hard("h1"))),
        "not a regular file",
    ),
    "hard link to a directory": (
        make_tar(("d", None, DIR), ("h", None, hard("d"))),
        "not a regular file",
    ),
}


@pytest.mark.parametrize("case", sorted(LINK_ESCAPES))
def test_links_are_resolved_against_the_archive(tmp_path: Path, case: str) -> None:
    data, why = LINK_ESCAPES[case]
    with pytest.raises(InvalidRequest, match=why):
        inspect(tmp_path, data)


async def test_a_hard_link_through_a_symlink_is_refused_at_upload(
    coordinator: Coordinator, admin_token: str
) -> None:
    project_id, environment_id = await workspace(coordinator, admin_token)
    rid = await create_resource(coordinator, admin_token, project_id, environment_id)
    data, _ = LINK_ESCAPES["hard link through a symlink"]
    assert coordinator.http is not None
    async with coordinator.http.post(
        f"{coordinator.url}/resources/{rid}/source/archive",
        data=data,
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/gzip"},
    ) as response:
        error = assert_error(
            (response.status, await response.json(), dict(response.headers)),
            400,
            "invalid_request",
        )
    assert error["details"] == {"member": "h"}
    assert stored_files(coordinator) == []


def test_symlink_chains_that_expand_exponentially_are_refused(tmp_path: Path) -> None:
    # l0 -> l1/l1/l1, l1 -> l2/l2/l2, ... each resolves inside the root, but walking them all
    # takes 3**depth steps; the walk has a budget instead.
    depth = 14
    members = [(f"l{i}", None, sym(f"l{i + 1}/l{i + 1}/l{i + 1}")) for i in range(depth)]
    members.append((f"l{depth}", None, sym(".")))
    with pytest.raises(InvalidRequest, match="too deeply chained"):
        inspect(tmp_path, make_tar(*members))


def test_internal_links_and_root_entries_are_accepted(tmp_path: Path) -> None:
    data = make_tar(
        (".", None, DIR),
        ("./a", None, DIR),
        ("a/f", b"x", {}),
        ("a/hard", None, hard("a/f")),
        ("a/hard2", None, hard("./a/../a/f")),
        ("a/self", None, sym(".")),
        ("a/up", None, sym("../a/self/f")),
        ("./b/c.txt", b"z", {}),
    )
    assert inspect(tmp_path, data) == 2


def test_what_the_cli_packs_is_accepted(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "src" / "lib").mkdir(parents=True)
    (app / "Dockerfile").write_text("FROM scratch\n")
    (app / "src" / "main.py").write_text("print('hi')\n")
    os.link(app / "src" / "main.py", app / "src" / "lib" / "same.py")
    (app / "current").symlink_to("src")
    (app / "src" / "lib" / "up").symlink_to("../main.py")
    packed = pack_folder(app)
    try:
        # The second name of the hard-linked file is packed as a hard link to the first.
        assert archives.inspect_stream(gzip.GzipFile(fileobj=packed.file)) == 2
    finally:
        packed.close()
