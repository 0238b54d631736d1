"""Archive member rules: paths stay in the root and never pass a symlink; links resolve inside.

Checked against the archive's own entries in one pass, as the members stream by, with bounded
memory: paths are remembered as 64-bit ids (a hash of the parent's id and the component), not as
strings, except for symlinks, whose targets are resolved once every symlink is known. The agent
unpacks with tarfile's "data" filter, which enforces the same rules against its disk; the
coordinator refuses such an archive at upload instead of letting a deployment fail later.
"""

from typing import Final

from coordinator.tar_scan import Entry, Kind, quote, refuse
from shared.errors import InvalidRequest

MAX_MEMBERS: Final = 100_000
MAX_UNPACKED_BYTES: Final = 2 * 1024 * 1024 * 1024
# Distinct parent directories of members (each costs a remembered id). With the member cap and
# the symlink bytes, this keeps the inspection's memory under ~15 MiB (bench/archive_memory.py).
MAX_DIRECTORIES: Final = 50_000
# Symlink names and targets are kept as text until the end of the archive.
MAX_SYMLINK_BYTES: Final = 2 * 1024 * 1024
_SYMLINK_DEPTH: Final = 40
# Path components walked while resolving all symlinks of one archive: links that expand into
# more links could otherwise make resolution exponential.
_RESOLVE_BUDGET: Final = 1_000_000
_ROOT: Final = 0


def _child(parent: int, part: str) -> int:
    return hash((parent, part))


def _file(path_id: int) -> int:
    """The id a regular file is remembered under, distinct from its id as a directory."""
    return path_id ^ 1


def _parts(name: str) -> list[str]:
    return [part for part in name.split("/") if part not in ("", ".")]


def _ids(parts: list[str]) -> list[int]:
    """The id of every prefix of ``parts``: ``a``, ``a/b``, ``a/b/c``."""
    ids: list[int] = []
    current = _ROOT
    for part in parts:
        current = _child(current, part)
        ids.append(current)
    return ids


class ArchiveCheck:
    """Feed every entry to ``add``, then call ``finish`` for the number of regular files."""

    def __init__(self) -> None:
        self.members = 0
        self.files = 0
        self.unpacked = 0
        # Ids of parent directories and (tagged, see ``_file``) of regular files, in one set:
        # a second set would cost a second hash table of the same size.
        self._seen: set[int] = set()
        self._directories = 0
        self._symlink_ids: dict[int, str] = {}
        self._symlinks: list[tuple[str, str]] = []
        self._symlink_bytes = 0
        self._budget = _RESOLVE_BUDGET

    def add(self, entry: Entry) -> None:
        """Check one member against the rules and the members before it."""
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise InvalidRequest(f"archive has more than {MAX_MEMBERS} members")
        self.unpacked += entry.size
        if self.unpacked > MAX_UNPACKED_BYTES:
            raise InvalidRequest("archive unpacks to more than 2 GiB")
        name = entry.name
        if name.startswith("/") or "\\" in name or "\0" in name or name[1:2] == ":":
            raise refuse(name, "has an absolute or non-POSIX path")
        parts = _parts(name)
        if ".." in parts:
            raise refuse(name, "escapes the archive root")
        if entry.kind is Kind.SPECIAL:
            raise refuse(name, "is a device or special file")
        if not parts:
            if entry.kind is Kind.DIR:
                return  # "./", the root itself
            raise refuse(name, "has an empty name")
        ids = _ids(parts)
        if any(parent in self._symlink_ids for parent in ids[:-1]):
            raise refuse(name, "is written through a symlink in the archive")
        own = ids[-1]
        if own in self._symlink_ids:
            raise refuse(name, "replaces a symlink in the archive")
        for parent in ids[:-1]:
            if parent not in self._seen:
                self._seen.add(parent)
                self._directories += 1
        if self._directories > MAX_DIRECTORIES:
            raise InvalidRequest(f"archive has more than {MAX_DIRECTORIES} directories")
        self._seen.discard(_file(own))
        if entry.kind is Kind.FILE:
            self.files += 1
            self._seen.add(_file(own))
        elif entry.kind is Kind.SYMLINK:
            self._add_symlink(name, ids, entry.linkname)
        elif entry.kind is Kind.HARDLINK:
            self._check_hardlink(name, entry.linkname)

    def _add_symlink(self, name: str, ids: list[int], target: str) -> None:
        if ids[-1] in self._seen:
            raise refuse(name, "is a symlink other members are written through")
        if target.startswith("/") or not target:
            raise refuse(name, f"is a symlink pointing outside the archive ({quote(target)})")
        self._symlink_bytes += len(name) + len(target)
        if self._symlink_bytes > MAX_SYMLINK_BYTES:
            raise InvalidRequest("archive symlinks hold more than 2 MiB of names and targets")
        self._symlink_ids[ids[-1]] = target
        self._symlinks.append((name, target))

    def _check_hardlink(self, name: str, target: str) -> None:
        """A hard link must name an earlier regular file, reached without passing a symlink.

        The agent links to ``root/target`` as written, so the walk follows the target's own
        components (``..`` included) rather than its normalized form.
        """
        if target.startswith("/"):
            raise refuse(name, "is a hard link pointing outside the archive")
        stack: list[int] = []
        for part in target.split("/"):
            if part in ("", "."):
                continue
            # Whatever comes after a symlink component (a name or "..") is reached through it.
            if stack and stack[-1] in self._symlink_ids:
                raise refuse(name, "is a hard link through a symlink in the archive")
            if part == "..":
                if not stack:
                    raise refuse(name, "is a hard link pointing outside the archive")
                stack.pop()
                continue
            stack.append(_child(stack[-1] if stack else _ROOT, part))
        if not stack or _file(stack[-1]) not in self._seen:
            raise refuse(
                name, "is a hard link to a missing member or one that is not a regular file"
            )

    def _walk(self, stack: list[int], parts: list[str], depth: int) -> bool:
        """Resolve ``parts`` from ``stack`` through the archive's symlinks; False if it leaves."""
        if depth > _SYMLINK_DEPTH:
            return False
        for part in parts:
            self._budget -= 1
            if self._budget < 0:
                raise InvalidRequest("archive symlinks are too deeply chained to check")
            if part in ("", "."):
                continue
            if part == "..":
                if not stack:
                    return False
                stack.pop()
                continue
            stack.append(_child(stack[-1] if stack else _ROOT, part))
            target = self._symlink_ids.get(stack[-1])
            if target is not None:
                stack.pop()
                if target.startswith("/") or not self._walk(stack, target.split("/"), depth + 1):
                    return False
        return True

    def finish(self) -> int:
        """Resolve every symlink now that all are known; return the number of regular files."""
        if self.members == 0:
            raise InvalidRequest("archive is empty")
        for name, target in self._symlinks:
            # Purely lexical checks are not enough: ``d/x -> ..`` makes ``d/x/..`` the parent
            # of the root. The walk starts in the link's directory.
            if not self._walk(_ids(_parts(name))[:-1], target.split("/"), 0):
                raise refuse(name, f"is a symlink pointing outside the archive ({quote(target)})")
        return self.files


__all__ = ["MAX_DIRECTORIES", "MAX_MEMBERS", "MAX_UNPACKED_BYTES", "ArchiveCheck"]
