"""Where the agent may keep backup artifacts: only under the directories its local configuration
allows (``BERTH_AGENT_BACKUP_DIRS``), whatever a request names.

A path is refused when it is relative, names ``.`` or ``..``, lies outside every allowed root,
or goes through a symbolic link (its resolved form must be itself, so a link planted under a
root can never lead out of it). Files are then opened relative to the directory's descriptor
with ``O_NOFOLLOW``, so the artifact itself cannot be a link either.
"""

import os
from pathlib import Path
from typing import Final

from shared.errors import Forbidden

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class PathRefused(Forbidden):
    """A directory this agent does not keep backups in (``forbidden``)."""


def allowed_dir(roots: tuple[str, ...], path: str) -> Path:
    """``path`` as the directory to use, or ``PathRefused`` saying why not (no file touched)."""
    if not roots:
        raise PathRefused(
            "this agent keeps no backups in local directories (BERTH_AGENT_BACKUP_DIRS is empty)"
        )
    if not path.startswith("/") or "\x00" in path:
        raise PathRefused(f"backup directory {path!r} must be an absolute path")
    if any(part in (".", "..") for part in path.split("/")):
        raise PathRefused(f"backup directory {path!r} must not contain '.' or '..'")
    normal = os.path.normpath(path)
    if not any(normal == root or normal.startswith(root.rstrip("/") + "/") for root in roots):
        raise PathRefused(
            f"backup directory {normal} is outside this agent's backup directories "
            f"({', '.join(roots)}; BERTH_AGENT_BACKUP_DIRS)"
        )
    if os.path.realpath(normal) != normal:
        raise PathRefused(f"backup directory {normal} goes through a symbolic link")
    return Path(normal)


def open_dir(roots: tuple[str, ...], path: str) -> int:
    """Create ``path`` if needed (mode 0700) and open it; the directory's descriptor.

    Checked again once it exists: a link swapped in between the check and the open is refused
    by ``O_NOFOLLOW`` on the last component and by the resolved-path check on the others.
    """
    directory = allowed_dir(roots, path)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    allowed_dir(roots, str(directory))
    try:
        return os.open(directory, _DIR_FLAGS)
    except OSError as exc:
        raise PathRefused(f"backup directory {directory} cannot be opened: {exc.strerror}") from exc
