"""What a rollout needs from the edge proxy, and the domain routes a container's label keeps."""

from collections.abc import Callable, Sequence
from functools import cache
from typing import Protocol

from shared.messages.deploy import DomainRoute
from shared.wire import list_validator


@cache
def _domain_routes() -> Callable[[str | bytes], list[DomainRoute]]:
    # Built on the first label that has domains: building it costs about 1.7 MiB, which a
    # server without bound domains never needs.
    return list_validator(DomainRoute)


class Edge(Protocol):
    """What a rollout needs from the edge proxy."""

    async def ensure_server(self) -> None:
        """Create the shared server if missing."""
        ...

    async def set_upstreams(
        self,
        resource_id: str,
        hostnames: list[str],
        path_prefix: str,
        upstreams: list[str],
        domains: Sequence[DomainRoute] = (),
    ) -> None:
        """Route ``hostnames`` (under ``path_prefix``) and ``domains`` to ``upstreams``."""
        ...

    async def remove_route(self, resource_id: str) -> None:
        """Drop a resource's route (missing is fine)."""
        ...

    async def current_upstreams(self, resource_id: str) -> list[str] | None:
        """Return the resource's upstreams, or None when it has no route."""
        ...

    def bindings_known(self, resource_id: str) -> bool:
        """Whether the edge knows which domain binding each name it routes for the resource
        is (not after a restart until the resource's routes are set once: Caddy does not
        hold all of them)."""
        ...


def domain_routes_label(value: str | None) -> list[DomainRoute]:
    """Parse the domain routes a container carries in its label (unreadable: none)."""
    if not value:
        return []
    try:
        return _domain_routes()(value)
    except ValueError:
        # A label edited by hand must not stop the other routes from being restored.
        return []
