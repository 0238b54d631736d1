"""FakeRuntime: an in-memory ContainerRuntime for unit tests of agent logic."""

from agent.runtime import RuntimeUnavailable


class FakeRuntime:
    """Answers like a Docker engine, or like a missing one when ``available`` is False."""

    def __init__(self, *, available: bool = True, version: str = "99.0-fake") -> None:
        self.available = available
        self._version = version
        self.closed = False

    async def version(self) -> str:
        """Return the fake engine version."""
        if not self.available:
            raise RuntimeUnavailable("Docker engine unreachable: fake")
        return self._version

    async def ping(self) -> None:
        """Succeed unless unavailable."""
        if not self.available:
            raise RuntimeUnavailable("Docker engine unreachable: fake")

    async def close(self) -> None:
        """Record the close."""
        self.closed = True
