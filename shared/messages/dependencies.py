"""Dependency-resource messages: run a database container on a server, or remove it."""

from typing import Literal

from shared.messages.typeset import message_types
from shared.wire import Field, WireModel

# Capability an agent advertises in ``hello.capabilities`` when it can run dependency resources.
DEPENDENCIES_CAPABILITY = "dependencies.v1"

DependencyKind = Literal["postgres", "redis", "mysql"]
"""The kinds Berth runs itself (the reference also names clickhouse, object-storage, opensearch)."""

_ID = r"^[A-Za-z0-9_-]{1,40}$"


def dependency_names(dependency_resource_id: str) -> tuple[str, str, str]:
    """The container, named volume and private network of a dependency resource on its server.

    The container's name is also its host name on the network (what bound apps connect to).
    """
    base = f"berth-dep-{dependency_resource_id.replace('_', '-')}"
    return base, f"{base}-data", base


class DependencyContainer(WireModel):
    """What to run. ``environment`` carries the generated credentials: it only travels this link."""

    kind: DependencyKind
    image: str = Field(min_length=1, max_length=512)
    environment: dict[str, str] = Field(default_factory=dict)
    command: list[str] = Field(default_factory=list, max_length=50)
    data_path: str = Field(max_length=200, pattern=r"^/[A-Za-z0-9/_.-]*$")
    port: int = Field(ge=1, le=65535)
    health_command: list[str] = Field(min_length=1, max_length=50)
    stop_signal: str = Field(default="SIGTERM", max_length=20)
    cpus: float | None = Field(default=None, gt=0, le=512)
    memory_bytes: int | None = Field(default=None, ge=6 * 1024 * 1024)
    publish_port: bool = Field(default=False, description="also publish the port on 127.0.0.1")
    labels: dict[str, str] = Field(default_factory=dict)


class DependencyEnsure(WireModel):
    """Coordinator → agent: make the dependency resource run (create its volume, network and
    container if missing, start it) and wait until its health check passes. Idempotent: sent
    again after a reconnect it finds what exists. Answered by ``dependency_status``."""

    type: Literal["dependency_ensure"] = "dependency_ensure"
    id: int
    dependency_resource_id: str = Field(pattern=_ID)
    container: DependencyContainer
    ready_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)


class DependencyRemove(WireModel):
    """Coordinator → agent: remove the container and network, and the volume unless
    ``keepData``. Answered by ``dependency_status`` (``removed``)."""

    type: Literal["dependency_remove"] = "dependency_remove"
    id: int
    dependency_resource_id: str = Field(pattern=_ID)
    keep_data: bool = False


class DependencyRotate(WireModel):
    """Coordinator → agent: set the password in ``container`` (its environment or command carry
    the new one) in the running database, then recreate the container with that spec (the
    volume stays) and wait until it is healthy. Answered by ``dependency_status``."""

    type: Literal["dependency_rotate"] = "dependency_rotate"
    id: int
    dependency_resource_id: str = Field(pattern=_ID)
    container: DependencyContainer
    ready_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)


class DependencyStatus(WireModel):
    """Agent → coordinator reply to ``dependency_ensure`` / ``_remove`` / ``_rotate``."""

    type: Literal["dependency_status"] = "dependency_status"
    id: int
    re: int
    dependency_resource_id: str = Field(pattern=_ID)
    status: Literal["ready", "failed", "removed"]
    container_id: str | None = Field(default=None, max_length=80)
    host_port: int | None = Field(default=None, ge=1, le=65535)
    message: str = Field(default="", max_length=2000)


DependenciesCoordinatorMessage = DependencyEnsure | DependencyRemove | DependencyRotate
DependenciesAgentMessage = DependencyStatus
DEPENDENCIES_COORDINATOR_TYPES = message_types(DependenciesCoordinatorMessage)
