"""A plan's storage mounts made safe: bind sources only under the agent's allowed roots, named
volumes created (labelled ``berth.*``) before any container uses them.

The roots come from the agent's local configuration (``BERTH_AGENT_BIND_MOUNT_ROOTS``), never
from the coordinator: a compromised or mistaken coordinator still cannot mount ``/``, the Docker
socket or anything else outside them.
"""

import os
import posixpath
import re
import stat
from typing import TYPE_CHECKING, Final

from agent.runtime import MANAGED_LABEL, ContainerRuntime, MountSpec
from shared.errors import Forbidden
from shared.messages import DeployPlan, VolumeMount

if TYPE_CHECKING:  # rollout.py imports this module; no import cycle at run time
    from agent.rollout import DeployLog

VOLUME_LABEL: Final = "berth.storage-volume-id"
BIND_REFUSED: Final = "bind-mount-not-allowed"
MOUNT_REFUSED: Final = "mount-not-allowed"
_VOLUME_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# Never mounted, whatever the roots say (a root may be a parent of one by mistake).
_NEVER: Final = ("/var/run/docker.sock", "/run/docker.sock", "/proc", "/sys", "/dev")


class MountRefused(Forbidden):
    """A bind mount the agent's configuration does not allow."""

    def __init__(self, message: str, reason: str = BIND_REFUSED) -> None:
        super().__init__(message, details={"reasonCode": reason})


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def checked_bind_source(source: str, roots: tuple[str, ...]) -> str:
    """The real host directory of a bind mount, or ``MountRefused``.

    Symlinks are resolved first, so a link under a root cannot point outside it. A missing
    directory under a root is created (mode 0755), as ``docker run -v`` would.
    """
    if not roots:
        raise MountRefused(
            f"bind mount of {source} refused: this agent allows no bind mounts "
            "(set BERTH_AGENT_BIND_MOUNT_ROOTS on the server)"
        )
    if not source.startswith("/"):
        raise MountRefused(f"bind mount source {source!r} is not an absolute path")
    real = os.path.realpath(source)
    if real == "/" or any(_under(real, never) for never in _NEVER):
        raise MountRefused(f"bind mount of {source} refused: {real} is never mounted")
    if not any(_under(real, root) for root in roots):
        raise MountRefused(
            f"bind mount of {source} refused: {real} is outside the agent's allowed roots "
            f"({', '.join(roots)})"
        )
    if not os.path.lexists(real):
        os.makedirs(real, mode=0o755, exist_ok=True)
        real = os.path.realpath(real)
    mode = os.stat(real).st_mode
    if not stat.S_ISDIR(mode):
        raise MountRefused(f"bind mount source {real} is not a directory")
    return real


async def prepare(
    mounts: list[VolumeMount],
    runtime: ContainerRuntime,
    roots: tuple[str, ...],
    labels: dict[str, str],
) -> tuple[MountSpec, ...]:
    """Check every bind mount, then create the named volumes; the mounts to run with.

    All binds are checked before any volume is created, so a refused plan changes nothing.
    """
    sources = {
        m.volume_id: checked_bind_source(m.source, roots) for m in mounts if m.kind == "bind-mount"
    }
    for mount in mounts:
        if mount.kind == "named-volume" and not _VOLUME_NAME.fullmatch(mount.source):
            raise MountRefused(f"{mount.source!r} is not a volume name", MOUNT_REFUSED)
        target = "/" + posixpath.normpath(mount.destination).lstrip("/")
        if target == "/" or any(_under(target, never) for never in _NEVER):
            raise MountRefused(
                f"cannot mount over {mount.destination} in the container", MOUNT_REFUSED
            )
    specs: list[MountSpec] = []
    for mount in mounts:
        if mount.kind == "bind-mount":
            specs.append(
                MountSpec("bind", sources[mount.volume_id], mount.destination, mount.read_only)
            )
            continue
        await runtime.ensure_volume(
            mount.source, {**labels, MANAGED_LABEL: "true", VOLUME_LABEL: mount.volume_id}
        )
        specs.append(MountSpec("volume", mount.source, mount.destination, mount.read_only))
    return tuple(specs)


async def prepare_for(
    *, plan_of: DeployPlan, runtime: ContainerRuntime, roots: tuple[str, ...], log: "DeployLog"
) -> tuple[MountSpec, ...]:
    """``prepare`` a plan's mounts, logging each one (nothing when it has none)."""
    if not plan_of.container.mounts:
        return ()
    labels = {
        "berth.project-id": plan_of.project_id,
        "berth.environment-id": plan_of.environment_id,
    }
    prepared = await prepare(plan_of.container.mounts, runtime, roots, labels)
    for mount in prepared:
        mode = "read-only" if mount.read_only else "read-write"
        log.line("start", f"mounting {mount.kind} {mount.source} at {mount.target} ({mode})")
    return prepared
