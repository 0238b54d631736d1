"""The container runtime seam: what the agent needs from Docker, as a Protocol."""

from typing import Protocol


class RuntimeUnavailable(Exception):
    """The container engine cannot be reached."""


class ContainerRuntime(Protocol):
    """Operations the agent performs on the container engine (blocking work off the loop)."""

    async def version(self) -> str:
        """Return the engine version; raise ``RuntimeUnavailable`` if unreachable."""
        ...

    async def ping(self) -> None:
        """Check the engine answers; raise ``RuntimeUnavailable`` if not."""
        ...

    async def close(self) -> None:
        """Release the client."""
        ...
