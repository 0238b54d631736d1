"""The Docker client tests use: container lists that tolerate removals racing them."""

from typing import Any

import docker
from docker.models.containers import Container, ContainerCollection


class _RaceTolerantContainers(ContainerCollection):
    """Lists skip containers removed between the engine's list and docker-py's inspect of each.

    Tests poll containers while agents create and remove them; docker-py lists ids, then
    inspects each, and a container removed in between raised NotFound out of a poll.
    """

    def list(self, *args: Any, **kwargs: Any) -> list[Container]:
        kwargs.setdefault("ignore_removed", True)
        return super().list(*args, **kwargs)


class RaceTolerantDockerClient(docker.DockerClient):
    """The Docker client tests use: container lists tolerate removals racing them."""

    @property
    def containers(self) -> ContainerCollection:
        return _RaceTolerantContainers(client=self)
