"""What a rollout needs from the edge proxy, and the domain routes a container's label keeps."""

from collections.abc import Sequence
from typing import Protocol

from pydantic import TypeAdapter

from shared.messages.deploy import DomainRoute

_DOMAIN_ROUTES = TypeAdapter(list[DomainRoute])


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


def domain_routes_label(value: str | None) -> list[DomainRoute]:
    """Parse the domain routes a container carries in its label (unreadable: none)."""
    if not value:
        return []
    try:
        return _DOMAIN_ROUTES.validate_json(value)
    except ValueError:
        # A label edited by hand must not stop the other routes from being restored.
        return []
