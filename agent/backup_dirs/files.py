"""Artifact files in an allowed backup directory: written to ``<name>.partial`` and renamed into
place only once flushed to disk, read back in chunks, removed, looked up. Blocking calls: the
feature runs them in worker threads."""

import contextlib
import os
import stat
from dataclasses import dataclass
from typing import Final

from agent.backup_dirs.paths import PathRefused, open_dir
from shared.errors import PlatformError

_PARTIAL: Final = ".partial"
_NEW_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(eq=False)
class ArtifactFile:
    """One open artifact: the directory's descriptor and the file's."""

    dir_fd: int
    fd: int
    name: str
    writing: bool
    done: bool = False

    def write(self, data: bytes) -> None:
        """Append ``data`` (all of it)."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def read(self, size: int) -> bytes:
        """Up to ``size`` next bytes (``b""`` at the end)."""
        return os.read(self.fd, size)

    def finish(self) -> None:
        """Flush to disk, rename the partial file to the artifact's name, flush the directory."""
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        os.replace(self.name + _PARTIAL, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        os.fsync(self.dir_fd)
        self.done = True
        self.close()

    def close(self) -> None:
        """Close both descriptors; an unfinished write's partial file is removed."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.dir_fd < 0:
            return
        if self.writing and not self.done:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name + _PARTIAL, dir_fd=self.dir_fd)
        os.close(self.dir_fd)
        self.dir_fd = -1


def open_artifact(roots: tuple[str, ...], path: str, name: str, writing: bool) -> ArtifactFile:
    """Open artifact ``name`` in ``path`` for writing (a new partial file) or reading."""
    dir_fd = open_dir(roots, path)
    try:
        if writing:
            fd = os.open(name + _PARTIAL, _NEW_FLAGS, 0o600, dir_fd=dir_fd)
        else:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise PathRefused(f"{path}/{name} is not a regular file")
    except OSError as exc:
        os.close(dir_fd)
        raise PlatformError(f"{path}/{name} cannot be opened: {exc.strerror}") from exc
    except BaseException:
        os.close(dir_fd)
        raise
    return ArtifactFile(dir_fd, fd, name, writing)


def remove_artifact(roots: tuple[str, ...], path: str, name: str) -> None:
    """Remove artifact ``name`` from ``path`` (nothing when it is gone)."""
    dir_fd = open_dir(roots, path)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def artifact_size(roots: tuple[str, ...], path: str, name: str) -> int | None:
    """The size of finished artifact ``name`` in ``path``, or None when there is none."""
    dir_fd = open_dir(roots, path)
    try:
        found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    finally:
        os.close(dir_fd)
    return found.st_size if stat.S_ISREG(found.st_mode) else None


def sweep_partials(roots: tuple[str, ...]) -> list[str]:
    """Remove the ``*.berthbk.partial`` files under ``roots`` (links not followed): at start
    no write is open, so each is what a killed agent left. The paths removed."""
    removed: list[str] = []
    for root in roots:
        for directory, _dirs, names in os.walk(root, followlinks=False):
            for name in names:
                if name.endswith(".berthbk" + _PARTIAL):
                    path = os.path.join(directory, name)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                        removed.append(path)
    return removed
