"""The build context's paths and tar: the same as the docker SDK's on the same directories."""

import io
import tarfile
from pathlib import Path
from typing import IO, cast

import pytest
from docker.utils.build import exclude_paths, tar

from agent.runtime.build_context import context_archive, context_paths, ignore_patterns

FILES = (
    "Dockerfile",
    "docker/Dockerfile.prod",
    "README.md",
    "Readme.TXT",
    "keep.log",
    "debug.log",
    "src/main.py",
    "src/debug.log",
    "src/deep/er/x.log",
    "src/deep/er/y.py",
    "node_modules/a/index.js",
    "node_modules/keep/index.js",
    ".env",
    ".git/HEAD",
    "a[b]/c.txt",
    "build/out/bin",
)

PATTERNS = [
    [],
    ["*.log"],
    ["**/*.log", "!keep.log"],
    ["node_modules", "!node_modules/keep"],
    ["node_modules/", "!node_modules/keep/index.js"],
    ["/src/deep/", "src/*.py"],
    [".*", "!.env"],
    ["**"],
    ["*", "!src", "!Dockerfile"],
    ["./build/../src/deep", "build/**/bin"],
    ["readme*", "?EADME.md"],
    ["a[b]", "a\\[b]", "[!d]ocker"],
    ["src/**", "!src/deep/**/*.py"],
    ["Dockerfile", ".dockerignore", "docker"],
    ["**/", "!**/*.py"],
    ["[", "src/[a-", "***"],
]


def make_tree(root: Path) -> Path:
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    (root / "link-to-src").symlink_to("src")
    (root / "empty").mkdir()
    return root


@pytest.mark.parametrize("patterns", PATTERNS, ids=[" ".join(p) or "none" for p in PATTERNS])
@pytest.mark.parametrize("dockerfile", ["Dockerfile", "docker/Dockerfile.prod"])
def test_paths_sent_are_the_sdks(tmp_path: Path, patterns: list[str], dockerfile: str) -> None:
    root = make_tree(tmp_path)
    (root / ".dockerignore").write_text("# a comment\n\n" + "\n".join(f" {p} " for p in patterns))
    assert ignore_patterns(root) == patterns
    expected = sorted(exclude_paths(str(root), list(patterns), dockerfile=dockerfile))
    assert context_paths(root, dockerfile) == expected


def test_without_a_dockerignore_everything_is_sent(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    assert ignore_patterns(root) == []
    assert context_paths(root, "Dockerfile") == sorted(exclude_paths(str(root), []))


def test_the_tar_is_the_sdks(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    (root / ".dockerignore").write_text("**/*.log\n!keep.log\nnode_modules\n")
    ours = io.BytesIO()
    context_archive(root, "Dockerfile", ours)
    excluded = ["**/*.log", "!keep.log", "node_modules"]
    # The stubs say "a file object"; it is the SDK's NamedTemporaryFile.
    theirs = cast(IO[bytes], tar(root, exclude=excluded, dockerfile=("Dockerfile", None)))

    def entries(data: bytes) -> list[tuple[str, str, int, int, str, bytes]]:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            return [
                (
                    m.name,
                    m.type.decode(),
                    m.mode,
                    int(m.mtime),
                    m.linkname,
                    f.read() if (f := archive.extractfile(m)) and m.isfile() else b"",
                )
                for m in archive.getmembers()
            ]

    with theirs:
        assert entries(ours.getvalue()) == entries(theirs.read())
