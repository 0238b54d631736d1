"""The tar census: counts, digest, and a cut-off or damaged archive refused."""

import io
import tarfile

import pytest

from agent.runtime.tar_census import CensusFailed, TarCensus
from shared.messages import VolumeManifest


def _archive(files: dict[str, bytes], link: tuple[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        root = tarfile.TarInfo("./")
        root.type = tarfile.DIRTYPE
        tar.addfile(root)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link[0])
            info.type = tarfile.SYMTYPE
            info.linkname = link[1]
            tar.addfile(info)
    return out.getvalue()


async def _census(data: bytes, chunk: int = 1000) -> VolumeManifest:
    census = TarCensus()
    for at in range(0, len(data), chunk):
        await census.feed(data[at : at + chunk])
    return await census.finish()


async def test_counts_entries_files_and_bytes() -> None:
    long_name = "./" + "d" * 150 + "/deep.txt"  # a PAX path: longer than the 100-byte field
    data = _archive({"./a.txt": b"hello", long_name: b"x" * 70_000}, link=("./l", "a.txt"))
    manifest = await _census(data)
    assert (manifest.entries, manifest.files, manifest.file_bytes) == (4, 2, 70_005)
    # Chunking does not change the answer.
    assert await _census(data, chunk=7) == manifest


async def test_digest_follows_names_and_sizes() -> None:
    one = await _census(_archive({"./a.txt": b"hello"}))
    renamed = await _census(_archive({"./b.txt": b"hello"}))
    longer = await _census(_archive({"./a.txt": b"hello!"}))
    same = await _census(_archive({"./a.txt": b"HELLO"}))
    assert len({one.paths_sha256, renamed.paths_sha256, longer.paths_sha256}) == 3
    assert same.paths_sha256 == one.paths_sha256  # contents are the artifact checksum's job


async def test_cut_off_archive_fails() -> None:
    data = _archive({"./a.txt": b"x" * 5000, "./b.txt": b"y" * 5000})
    with pytest.raises(CensusFailed):
        await _census(data[:3000])  # inside a.txt's data
    # Cut exactly where b.txt's header starts: tarfile alone would end quietly.
    with pytest.raises(CensusFailed, match="ends early"):
        await _census(data[: 512 + 512 + 5120])


async def test_damaged_header_fails() -> None:
    data = bytearray(_archive({"./a.txt": b"hello", "./b.txt": b"world"}))
    data[1536 + 100] ^= 0xFF  # inside b.txt's header: its checksum no longer matches
    with pytest.raises(CensusFailed, match="no valid entry at byte 1536"):
        await _census(bytes(data))


async def test_not_an_archive_and_early_close() -> None:
    with pytest.raises(CensusFailed):
        await _census(b"not a tar at all" * 100)
    census = TarCensus()
    await census.feed(_archive({"./a.txt": b"hello"})[:600])
    await census.aclose()  # stopped early: the thread ends, nothing raised here
