"""The Docker calls monitoring needs (list, inspect for a pid, df, prune removals), blocking."""

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from agent.runtime import (
    DEPLOYMENT_LABEL,
    MANAGED_LABEL,
    RESOURCE_LABEL,
    ContainerRuntime,
    EngineError,
    foreign,
)

PROJECT_LABEL = "berth.project-id"
ENVIRONMENT_LABEL = "berth.environment-id"


T = TypeVar("T")
# df can take seconds on a busy host; the client's own timeouts end most calls sooner.
_CALL_SECONDS = 300.0

__all__ = ["DockerEngine", "Engine", "EngineContainer", "EngineError", "container_from_api"]


@dataclass(frozen=True)
class EngineContainer:
    """One container as ``/containers/json`` lists it."""

    container_id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    state: str = "running"
    status: str = ""
    image_id: str = ""
    created: int = 0
    size_rw: int | None = None
    # Created by another server's agent on a shared engine: never sampled, counted or pruned.
    foreign: bool = False

    @property
    def managed(self) -> bool:
        """Deployed by Berth (``berth.managed=true``) for this server."""
        return self.labels.get(MANAGED_LABEL) == "true" and not self.foreign

    def label(self, name: str) -> str | None:
        """A ``berth.*`` attribution label, None when absent or empty."""
        value = self.labels.get(name, "")[:40]
        return value or None

    @property
    def project_id(self) -> str | None:
        """Attribution to a project."""
        return self.label(PROJECT_LABEL)

    @property
    def environment_id(self) -> str | None:
        """Attribution to an environment."""
        return self.label(ENVIRONMENT_LABEL)

    @property
    def resource_id(self) -> str | None:
        """Attribution to a resource."""
        return self.label(RESOURCE_LABEL)

    @property
    def deployment_id(self) -> str | None:
        """Attribution to a deployment."""
        return self.label(DEPLOYMENT_LABEL)


def container_from_api(raw: dict[str, Any], server_id: str | None = None) -> EngineContainer:
    """Convert one entry of ``/containers/json`` (``foreign`` against ``server_id``)."""
    names = raw.get("Names") or [""]
    labels = {str(k): str(v) for k, v in (raw.get("Labels") or {}).items()}
    return EngineContainer(
        container_id=str(raw.get("Id", "")),
        name=str(names[0]).lstrip("/"),
        labels=labels,
        state=str(raw.get("State", "")),
        status=str(raw.get("Status", "")),
        image_id=str(raw.get("ImageID", "")),
        created=int(raw.get("Created") or 0),
        size_rw=raw.get("SizeRw"),
        foreign=foreign(labels, server_id),
    )


class Engine(Protocol):
    """Blocking engine calls; every method runs inside a worker thread."""

    def running_containers(self) -> list[EngineContainer]:
        """Running containers (one cheap list call)."""
        ...

    def all_containers(self, *, size: bool) -> list[EngineContainer]:
        """Every container, with writable-layer sizes when ``size`` (costly)."""
        ...

    def container_pid(self, container_id: str) -> int | None:
        """The container's init pid on the host (one inspect), None when it is not running."""
        ...

    def disk_usage(self) -> dict[str, Any]:
        """``/system/df`` (costly: seconds on a busy host)."""
        ...

    def data_root(self) -> str:
        """Docker's data root directory."""
        ...

    def dangling_images(self) -> list[dict[str, Any]]:
        """Untagged images no tag points to (``/images/json?filters=dangling=true``)."""
        ...

    def remove_container(self, container_id: str) -> None:
        """Remove a stopped container (never forced: a running one makes this fail)."""
        ...

    def remove_image(self, image_id: str) -> None:
        """Remove an image (never forced: one in use makes this fail)."""
        ...


class DockerEngine:
    """Monitoring's blocking calls, made on the agent's loop through the runtime seam.

    Sampling, capacity and prune run in worker threads (cgroup and /proc reads block); their
    engine calls go to the runtime's one client on the loop and wait for the answer there.
    """

    def __init__(
        self,
        runtime: ContainerRuntime,
        loop: asyncio.AbstractEventLoop,
        only_label: str | None = None,
        server_id: str | None = None,
    ) -> None:
        self._runtime = runtime
        self._loop = loop
        self._server_id = server_id
        # Tests and benchmarks confine monitoring (and prune!) to their own containers.
        self._filters = {"label": [only_label]} if only_label else None

    def _call(self, call: Coroutine[Any, Any, T], failure: str) -> T:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            call.close()
            # Waiting here would block the very loop that must answer.
            raise RuntimeError("DockerEngine calls block: make them from a worker thread")
        future = asyncio.run_coroutine_threadsafe(call, self._loop)
        try:
            # Bounded: a loop that stopped meanwhile never answers, and this thread must end.
            return future.result(timeout=_CALL_SECONDS)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise EngineError(f"{failure}: no answer in {_CALL_SECONDS:g} s") from exc
        except EngineError as exc:
            raise EngineError(f"{failure}: {exc}", exc.status) from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EngineError(f"{failure}: {exc!r}") from exc

    def running_containers(self) -> list[EngineContainer]:
        """Running containers."""
        found = self._call(
            self._runtime.engine_containers(all=False, size=False, filters=self._filters),
            "cannot list containers",
        )
        containers = [container_from_api(c, self._server_id) for c in found]
        # Another server's containers are its agent's to sample.
        return [c for c in containers if not c.foreign]

    def all_containers(self, *, size: bool) -> list[EngineContainer]:
        """Every container, optionally with sizes."""
        found = self._call(
            self._runtime.engine_containers(all=True, size=size, filters=self._filters),
            "cannot list containers",
        )
        # Kept with ``foreign`` set: their images are still in use (never dangling here).
        return [container_from_api(c, self._server_id) for c in found]

    def container_pid(self, container_id: str) -> int | None:
        """Init pid from one inspect."""
        try:
            attrs = self._call(
                self._runtime.inspect(container_id), f"cannot inspect {container_id[:12]}"
            )
        except EngineError as exc:
            if exc.not_found:
                return None
            raise
        pid = int((attrs.get("State") or {}).get("Pid") or 0)
        return pid if pid > 0 else None

    def disk_usage(self) -> dict[str, Any]:
        """``/system/df``."""
        return self._call(self._runtime.disk_usage(), "cannot read Docker disk usage")

    def data_root(self) -> str:
        """``DockerRootDir`` from ``/info``."""
        info = self._call(self._runtime.info(), "cannot read Docker info")
        return str(info.get("DockerRootDir") or "/var/lib/docker")

    def dangling_images(self) -> list[dict[str, Any]]:
        """Dangling images."""
        return self._call(self._runtime.dangling_images(), "cannot list images")

    def remove_container(self, container_id: str) -> None:
        """Remove a stopped container."""
        try:
            self._call(
                self._runtime.remove_unused(container_id=container_id),
                f"cannot remove container {container_id[:12]}",
            )
        except EngineError as exc:
            if not exc.not_found:
                raise

    def remove_image(self, image_id: str) -> None:
        """Remove an image, refusing when a container uses it."""
        try:
            self._call(
                self._runtime.remove_unused(image_id=image_id),
                f"cannot remove image {image_id[:19]}",
            )
        except EngineError as exc:
            if not exc.not_found:
                raise
