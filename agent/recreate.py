"""The ``recreate`` rollout strategy: stop the old containers before the candidates start (brief
downtime, one writer on a volume at a time), and start them again if the candidates fail."""

from typing import TYPE_CHECKING

from agent.runtime import ContainerRuntime
from shared.errors import PlatformError
from shared.messages import ManagedContainer

if TYPE_CHECKING:  # rollout.py imports this module; no import cycle at run time
    from agent.rollout import DeployLog


class Recreate:
    """Remembers which old containers it stopped, so a failed rollout can start them again."""

    def __init__(self, runtime: ContainerRuntime, log: "DeployLog", grace_seconds: float) -> None:
        self._runtime = runtime
        self._log = log
        self._grace = grace_seconds
        self.stopped: list[ManagedContainer] = []

    async def stop_old(self, old: list[ManagedContainer], why: str = "recreate") -> None:
        """Stop the running old containers (SIGTERM, then SIGKILL after the grace period);
        ``why`` leads the log line (``recreate`` or the host port that needs them gone)."""
        running = [c for c in old if c.state in ("running", "restarting", "paused")]
        if not running:
            return
        self._log.line(
            "start",
            f"{why}: stopping {len(running)} old container(s) before starting the new ones",
            event="old-stopped",
        )
        for container in running:
            await self._runtime.stop(container.container_id, self._grace)
            self.stopped.append(container)
            self._log.line("start", f"stopped old container {container.name}")

    async def restart_old(self) -> None:
        """The candidates failed: start the old version again, so the resource keeps running."""
        for container in self.stopped:
            try:
                await self._runtime.start(container.container_id)
                self._log.line("cleanup", f"started old container {container.name} again")
            except PlatformError as exc:
                self._log.line(
                    "cleanup",
                    f"could not start {container.name} again: {exc.message}",
                    level="warn",
                )
        self.stopped = []
