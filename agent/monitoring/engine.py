"""The Docker calls monitoring needs (list, inspect for a pid, df, prune removals), blocking."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.runtime import DEPLOYMENT_LABEL, MANAGED_LABEL, RESOURCE_LABEL, foreign
from agent.runtime.engine_api import EngineApi, EngineApiError, EngineNotFound

PROJECT_LABEL = "berth.project-id"
ENVIRONMENT_LABEL = "berth.environment-id"


class EngineError(Exception):
    """The engine could not answer a monitoring call."""


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


_FAILURES = (EngineApiError, OSError, ValueError)


class DockerEngine:
    """The real engine through the agent's shared client for routine engine calls."""

    def __init__(
        self,
        client: Callable[[], EngineApi],
        only_label: str | None = None,
        server_id: str | None = None,
    ) -> None:
        self._client = client
        self._server_id = server_id
        # Tests and benchmarks confine monitoring (and prune!) to their own containers.
        self._filters = {"label": [only_label]} if only_label else None

    def running_containers(self) -> list[EngineContainer]:
        """Running containers."""
        try:
            found = self._client().containers(filters=self._filters)
            containers = [container_from_api(c, self._server_id) for c in found]
        except _FAILURES as exc:
            raise EngineError(f"cannot list containers: {exc}") from exc
        # Another server's containers are its agent's to sample.
        return [c for c in containers if not c.foreign]

    def all_containers(self, *, size: bool) -> list[EngineContainer]:
        """Every container, optionally with sizes."""
        try:
            found = self._client().containers(all=True, size=size, filters=self._filters)
        except _FAILURES as exc:
            raise EngineError(f"cannot list containers: {exc}") from exc
        # Kept with ``foreign`` set: their images are still in use (never dangling here).
        return [container_from_api(c, self._server_id) for c in found]

    def container_pid(self, container_id: str) -> int | None:
        """Init pid from one inspect."""
        try:
            state = self._client().inspect_container(container_id).get("State") or {}
        except EngineNotFound:
            return None
        except _FAILURES as exc:
            raise EngineError(f"cannot inspect {container_id[:12]}: {exc}") from exc
        pid = int(state.get("Pid") or 0)
        return pid if pid > 0 else None

    def disk_usage(self) -> dict[str, Any]:
        """``/system/df``."""
        try:
            return dict(self._client().df())
        except _FAILURES as exc:
            raise EngineError(f"cannot read Docker disk usage: {exc}") from exc

    def data_root(self) -> str:
        """``DockerRootDir`` from ``/info``."""
        try:
            return str(self._client().info().get("DockerRootDir") or "/var/lib/docker")
        except _FAILURES as exc:
            raise EngineError(f"cannot read Docker info: {exc}") from exc

    def dangling_images(self) -> list[dict[str, Any]]:
        """Dangling images."""
        try:
            return list(self._client().images(filters={"dangling": ["true"]}))
        except _FAILURES as exc:
            raise EngineError(f"cannot list images: {exc}") from exc

    def remove_container(self, container_id: str) -> None:
        """Remove a stopped container."""
        try:
            self._client().remove_container(container_id, force=False)
        except EngineNotFound:
            return
        except _FAILURES as exc:
            raise EngineError(f"cannot remove container {container_id[:12]}: {exc}") from exc

    def remove_image(self, image_id: str) -> None:
        """Remove an image, refusing when a container uses it."""
        try:
            self._client().remove_image(image_id, force=False)
        except EngineNotFound:
            return
        except _FAILURES as exc:
            raise EngineError(f"cannot remove image {image_id[:19]}: {exc}") from exc
