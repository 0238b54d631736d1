"""A build context as the docker SDK sends it: the directory tarred, less what .dockerignore drops.

The engine's classic builder applies no ``.dockerignore`` itself: the client leaves the excluded
files out of the tar it sends. This module reproduces the docker SDK's client side (docker-py
7.x, Apache-2.0: ``docker/utils/build.py`` and ``docker/utils/fnmatch.py``) so that a build
through ``engine_ops`` sends exactly the files a build through the SDK sent;
tests/unit/agent/test_build_context.py compares the two on the same directories.
"""

import os
import re
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import IO

IGNORE_FILE = ".dockerignore"


def _split_path(path: str) -> list[str]:
    return [part for part in path.split("/") if part and part != "."]


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    """The SDK's shell pattern: ``*`` and ``?`` stop at ``/``, ``**`` crosses directories."""
    i, n = 0, len(pattern)
    regex = "^"
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":  # "**/" is "**"
                    i += 1
                regex += ".*" if i >= n else "(.*/)?"
            else:
                regex += "[^/]*"
        elif c == "?":
            regex += "[^/]"
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                regex += "\\["
            else:
                stuff = pattern[i:j].replace("\\", "\\\\")
                i = j + 1
                if stuff[0] == "!":
                    stuff = f"^{stuff[1:]}"
                elif stuff[0] == "^":
                    stuff = f"\\{stuff}"
                regex += f"[{stuff}]"
        else:
            regex += re.escape(c)
    return re.compile(f"{regex}$")


class _Pattern:
    """One .dockerignore line: ``.`` and ``..`` resolved, slashes at either end dropped."""

    def __init__(self, text: str) -> None:
        self.exclusion = text.startswith("!")
        parts = _split_path((text[1:] if self.exclusion else text).strip())
        i = 0
        while i < len(parts):
            if parts[i] == "..":
                del parts[i]
                if i > 0:
                    del parts[i - 1]
                    i -= 1
            else:
                i += 1
        self.dirs = parts
        self.cleaned = "/".join(parts)

    def match(self, path: str) -> bool:
        # Case-insensitive, as the SDK matches.
        return _compiled(self.cleaned.lower()).match(path.lower()) is not None


class _Matcher:
    """The patterns in order, the last match deciding; a path is excluded with its parents."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [p for p in map(_Pattern, patterns) if p.dirs]
        self.patterns.append(_Pattern(f"!{IGNORE_FILE}"))

    def excluded(self, path: str) -> bool:
        matched = False
        parent = os.path.dirname(path)
        parent_dirs = _split_path(parent)
        for pattern in self.patterns:
            match = pattern.match(path)
            if not match and parent != "" and len(pattern.dirs) <= len(parent_dirs):
                match = pattern.match("/".join(parent_dirs[: len(pattern.dirs)]))
            if match:
                matched = not pattern.exclusion
        return matched

    def walk(self, root: str, current: str) -> list[str]:
        found: list[str] = []
        for name in os.listdir(current):
            path = os.path.join(os.path.relpath(current, root), name).removeprefix("./")
            excluded = self.excluded(path)
            if not excluded:
                found.append(path)
            full = os.path.join(root, path)
            if not os.path.isdir(full) or os.path.islink(full):
                continue
            # An excluded directory is still entered when a "!" pattern re-includes under it.
            if excluded and not any(
                p.exclusion and p.cleaned.startswith(path) for p in self.patterns
            ):
                continue
            found.extend(self.walk(root, full))
        return found


def ignore_patterns(context: Path) -> list[str]:
    """The context's .dockerignore lines, as the SDK reads them (none when absent)."""
    try:
        text = (context / IGNORE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def context_paths(context: Path, dockerfile: str) -> list[str]:
    """Every path of the context that is sent (files and directories), sorted."""
    root = os.path.abspath(context)
    # The Dockerfile is always sent, whatever .dockerignore says.
    matcher = _Matcher([*ignore_patterns(context), f"!{dockerfile}"])
    return sorted(set(matcher.walk(root, root)))


def context_archive(context: Path, dockerfile: str, into: IO[bytes]) -> None:
    """Write the build context's tar (uncompressed) to ``into``."""
    root = os.path.abspath(context)
    with tarfile.open(mode="w", fileobj=into) as archive:
        for path in context_paths(context, dockerfile):
            full_path = os.path.join(root, path)
            info: tarfile.TarInfo | None = archive.gettarinfo(full_path, arcname=path)
            if info is None:  # a socket: nothing to send
                continue
            if info.mtime < 0 or info.mtime > 8**11 - 1:
                info.mtime = int(info.mtime)  # https://bugs.python.org/issue32713
            if info.isfile():
                try:
                    with open(full_path, "rb") as handle:
                        archive.addfile(info, handle)
                except OSError as exc:
                    raise OSError(f"Can not read file in context: {full_path}") from exc
            else:
                archive.addfile(info, None)
