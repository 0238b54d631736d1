"""Path rules of storage volumes: a mount's destination in the container, a bind's host source.

The coordinator refuses what can never be right (relative paths, ``..``, the container's
kernel interfaces); the agent alone decides which host directories may be bind-mounted
(``BERTH_AGENT_BIND_MOUNT_ROOTS``), so an API caller can never reach ``/`` or the Docker socket.
"""

import posixpath
from typing import Final

from shared.errors import InvalidRequest

MAX_PATH: Final = 1000
# Container paths a mount must not cover: the kernel's interfaces and Docker's own files.
RESERVED_DESTINATIONS: Final = (
    "/proc",
    "/sys",
    "/dev",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
)
# Host paths refused before any agent is asked; the agent's allowed roots are the real rule.
RESERVED_SOURCES: Final = (
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/etc",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/lib/docker",
)


def _problem(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field}: {message}", details={"problems": [{"field": field, "message": message}]}
    )


def _absolute(value: str, field: str) -> str:
    if not value.startswith("/"):
        raise _problem(field, "must be an absolute path")
    if len(value) > MAX_PATH or any(ord(c) < 32 or c == "\\" for c in value):
        raise _problem(field, "has control characters, backslashes or is too long")
    if ".." in value.split("/"):
        raise _problem(field, "must not contain '..'")
    normal = posixpath.normpath(value)
    # normpath keeps a leading "//"; Docker would not.
    return "/" + normal.lstrip("/")


def _covers(path: str, reserved: tuple[str, ...]) -> str | None:
    for entry in reserved:
        if path == entry or path.startswith(entry + "/"):
            return entry
    return None


def destination_path(value: str) -> str:
    """The normalised container path of a mount, or ``InvalidRequest``."""
    path = _absolute(value, "destinationPath")
    if path == "/":
        raise _problem("destinationPath", "cannot mount over the container's root")
    reserved = _covers(path, RESERVED_DESTINATIONS)
    if reserved is not None:
        raise _problem("destinationPath", f"{reserved} is reserved by the container runtime")
    return path


def source_path(value: str) -> str:
    """The normalised host directory of a bind mount, or ``InvalidRequest``."""
    path = _absolute(value, "sourcePath")
    if path == "/":
        raise _problem("sourcePath", "cannot bind-mount the host's root")
    reserved = _covers(path, RESERVED_SOURCES)
    if reserved is not None:
        raise _problem("sourcePath", f"{reserved} can never be bind-mounted")
    return path


def docker_volume_name(volume_id: str) -> str:
    """The Docker name of a named volume: stable, derived from the id, never user text."""
    return f"berth-{volume_id.lower()}"
