"""Pack a local folder into a gzip tar (a temporary file) for ``berth deploy --path``.

What is left out: every ``.git`` directory, always, and what the folder's ``.dockerignore``
excludes. The ``.dockerignore`` support is the common subset: one pattern per line, ``#``
comments, ``!`` re-includes, ``*``/``?``/``[...]`` within a path segment, ``**`` across segments,
and a pattern naming a directory excludes everything under it. Owner names and ids are not
recorded (they mean nothing on the server). Symlinks are kept as links but must stay inside the
folder, and special files (sockets, devices, FIFOs) are refused: the coordinator refuses both.
"""

import hashlib
import os
import re
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

IGNORE_FILE: Final = ".dockerignore"
ALWAYS_EXCLUDED: Final = frozenset({".git"})
_CHUNK: Final = 1024 * 1024


class PackingError(Exception):
    """The folder cannot be packed (not a directory, unreadable, or holds refused entries)."""


@dataclass(frozen=True)
class Rule:
    """One ``.dockerignore`` line: a compiled pattern, re-including when ``negated``."""

    pattern: re.Pattern[str]
    negated: bool


@dataclass
class PackedFolder:
    """A packed folder: the open temporary gzip tar (at offset 0) and what it holds."""

    file: IO[bytes]
    size_bytes: int
    file_count: int
    sha256: str

    def close(self) -> None:
        """Delete the temporary file."""
        self.file.close()


def _compile(pattern: str) -> re.Pattern[str]:
    """Turn a ``.dockerignore`` pattern into a regex over a slash-separated relative path."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            out.append("(?:.*/)?")  # zero or more leading directories
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (close := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : close].replace("\\", "\\\\")
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    # A pattern that names a directory also excludes everything below it.
    return re.compile("".join(out) + "(?:/.*)?", re.DOTALL)


def load_rules(root: Path) -> list[Rule]:
    """Read ``root/.dockerignore`` (missing: no rules)."""
    try:
        lines = (root / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise PackingError(f"cannot read {root / IGNORE_FILE}: {exc}") from exc
    rules: list[Rule] = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        negated = text.startswith("!")
        text = text.removeprefix("!").strip()
        clean = os.path.normpath(text).replace(os.sep, "/").lstrip("/")
        if clean and clean != ".":
            rules.append(Rule(_compile(clean), negated))
    return rules


def excluded(relative: str, rules: list[Rule]) -> bool:
    """Whether a slash-separated path inside the folder is left out (the last match wins)."""
    if any(part in ALWAYS_EXCLUDED for part in relative.split("/")):
        return True
    verdict = False
    for rule in rules:
        if rule.pattern.fullmatch(relative):
            verdict = not rule.negated
    return verdict


def _check_link(root: Path, path: Path, relative: str) -> None:
    target = os.readlink(path)
    resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
    if os.path.isabs(target) or not (resolved + os.sep).startswith(str(root) + os.sep):
        raise PackingError(f"{relative} is a symlink pointing outside the folder ({target})")


def _entries(root: Path, rules: list[Rule]) -> list[tuple[Path, str]]:
    """Every path to pack, sorted, as (absolute path, archive name)."""
    found: list[tuple[Path, str]] = []

    def fail(error: OSError) -> None:
        raise PackingError(f"cannot read {error.filename}: {error.strerror}")

    for directory, dirs, files in os.walk(root, onerror=fail):
        base = Path(directory)
        rel_base = base.relative_to(root).as_posix()
        prefix = "" if rel_base == "." else rel_base + "/"
        # Pruning excluded directories is only safe without "!" rules that could re-include
        # something below them; with such rules each entry is decided on its own.
        prune = not any(rule.negated for rule in rules)
        kept_dirs = []
        for name in sorted(dirs):
            relative = prefix + name
            path = base / name
            if path.is_symlink():
                if not excluded(relative, rules):
                    _check_link(root, path, relative)
                    found.append((path, relative))
                continue
            if name in ALWAYS_EXCLUDED or (prune and excluded(relative, rules)):
                continue
            kept_dirs.append(name)
            if not excluded(relative, rules):
                found.append((path, relative))
        dirs[:] = kept_dirs
        for name in sorted(files):
            relative = prefix + name
            if excluded(relative, rules):
                continue
            path = base / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                _check_link(root, path, relative)
            elif not stat.S_ISREG(mode):
                raise PackingError(f"{relative} is a special file (socket, device or FIFO)")
            found.append((path, relative))
    return found


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack_folder(folder: Path) -> PackedFolder:
    """Pack ``folder`` into a temporary gzip tar; the caller closes the result.

    Blocking (reads and compresses every file): call through ``asyncio.to_thread``.
    """
    root = folder.resolve()
    if not root.is_dir():
        raise PackingError(f"{folder} is not a directory")
    entries = _entries(root, load_rules(root))
    if not any(path.is_file() and not path.is_symlink() for path, _ in entries):
        raise PackingError(f"{folder} holds no files to upload")
    file = tempfile.TemporaryFile()  # noqa: SIM115  (owned by the returned PackedFolder)
    try:
        count = 0
        with tarfile.open(fileobj=file, mode="w:gz") as tar:
            for path, name in entries:
                try:
                    tar.add(path, arcname=name, recursive=False, filter=_anonymous)
                except OSError as exc:
                    raise PackingError(f"cannot read {name}: {exc.strerror or exc}") from exc
                count += path.is_file() and not path.is_symlink()
        digest = hashlib.sha256()
        file.seek(0)
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
        size = file.tell()
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return PackedFolder(file=file, size_bytes=size, file_count=count, sha256=digest.hexdigest())


def human_size(size: int) -> str:
    """``1.4 MiB``-style size."""
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
