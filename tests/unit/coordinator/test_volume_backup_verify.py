"""Comparing a restored volume's count with the manifest taken with its backup."""

from coordinator.backups.volume_verify import compare
from shared.messages import VolumeManifest

TAKEN = VolumeManifest(entries=4, files=2, file_bytes=108_899, paths_sha256="a" * 64)


def test_the_same_count_passes() -> None:
    passed, message = compare(TAKEN, TAKEN.model_copy())
    assert passed
    assert message == (
        "restored 2 file(s) with 108899 byte(s) in 4 entries: matches the backup's manifest"
    )


def test_each_difference_fails_and_is_named() -> None:
    found = VolumeManifest(entries=3, files=1, file_bytes=6, paths_sha256="b" * 64)
    passed, message = compare(TAKEN, found)
    assert not passed
    assert "entries 3 where the backup recorded 4" in message
    assert "files 1 where the backup recorded 2" in message
    assert "file bytes 6 where the backup recorded 108899" in message
    assert "paths, types or sizes differ" in message
    renamed = TAKEN.model_copy(update={"paths_sha256": "c" * 64})
    passed, message = compare(TAKEN, renamed)
    assert not passed
    assert message.endswith("the files' paths, types or sizes differ from the backup's")


def test_a_backup_without_a_manifest_passes_on_a_whole_archive_and_says_so() -> None:
    passed, message = compare(None, TAKEN)
    assert passed
    assert "no manifest to compare with" in message
