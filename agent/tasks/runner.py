"""One task run on the engine (or, for ``exec`` runs, in the resource's running container: see
exec_run.py): a fresh container from the deployment's image (with its volumes,
checked as a deployment's are, and its dependency networks), its output read as it is written,
a deadline that kills it, a stop that ends it, and the container removed."""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from agent import mounts
from agent.logstream.decode import LineDecoder
from agent.runtime import ContainerRuntime, EngineError, RunSpec
from agent.tasks.exec_run import run_exec
from shared.errors import PlatformError, RuntimeFailed
from shared.messages.logs import LogStreamName
from shared.messages.tasks import (
    TaskRunEnd,
    TaskRunFailureCode,
    TaskRunLine,
    TaskRunStart,
    ending_failure_code,
)

logger = logging.getLogger(__name__)

RUN_LABEL: Final = "berth.task-run-id"
TASK_LABEL: Final = "berth.task-id"
# Not ``berth.resource-id``: a task's container must not count as one of the resource's serving
# containers (runtime logs, inventory, rollouts); its output is the run's log only.
TASK_RESOURCE_LABEL: Final = "berth.task-resource-id"
STOP_GRACE_SECONDS: Final = 2.0
# After the container exits, the log reader gets this long to deliver the last lines.
_DRAIN_SECONDS: Final = 5.0
# Longer lines are cut (the wire model's limit); Docker itself splits lines at 16 KiB.
MAX_LINE_CHARS: Final = 16_384

OnLines = Callable[[list[TaskRunLine]], None]
OnStarted = Callable[[str, datetime], None]


@dataclass(frozen=True)
class Ending:
    """How a run ended, as the result frame reports it."""

    ended: TaskRunEnd
    exit_code: int | None
    started_at: datetime | None
    finished_at: datetime
    failure_summary: str | None
    # Set when the ending alone does not say why (an exec with no running container).
    code: TaskRunFailureCode | None = None

    @property
    def succeeded(self) -> bool:
        """Exited by itself with status 0."""
        return self.ended == "exited" and self.exit_code == 0

    @property
    def failure_code(self) -> TaskRunFailureCode | None:
        """Why the run failed (None when it succeeded)."""
        if self.succeeded:
            return None
        return self.code or ending_failure_code(self.ended, self.exit_code)


def container_name(run_id: str) -> str:
    """The run's container name (unique per run, so a resent start cannot run it twice)."""
    return f"berth-task-{run_id}".lower()


class TaskRunner:
    """Runs one ``task_run_start`` to its end; ``stop()`` ends it early."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        start: TaskRunStart,
        on_lines: OnLines,
        on_started: OnStarted,
        bind_mount_roots: tuple[str, ...] = (),
    ) -> None:
        self.runtime = runtime
        # From the agent's local settings only, as for deployments: what bind mounts may reach.
        self.bind_mount_roots = bind_mount_roots
        self.start = start
        self._on_lines = on_lines
        self._on_started = on_started
        self._stop = asyncio.Event()
        self._sequence = 0

    def stop(self) -> None:
        """Ask the run to end (its container is stopped, then removed)."""
        self._stop.set()

    async def run(self) -> Ending:
        """Start the container, follow it to its end, remove it."""
        spec = self.start
        if self._stop.is_set():
            return Ending("stopped", None, None, _now(), "stopped before it started")
        if spec.execution_mode == "exec":
            return await self._exec()
        labels = {
            RUN_LABEL: spec.run_id,
            TASK_LABEL: spec.task_id,
            TASK_RESOURCE_LABEL: spec.resource_id,
            "berth.deployment-id": spec.deployment_id,
        }
        try:
            # The same checks as a deployment's (allowed roots, never-mounted paths, Berth's
            # own volumes only): a refused mount fails the run before anything is created.
            prepared = await mounts.prepare(
                spec.container.mounts,
                self.runtime,
                self.bind_mount_roots,
                {TASK_RESOURCE_LABEL: spec.resource_id},
            )
        except PlatformError as exc:
            reason = (exc.details or {}).get("reasonCode") or exc.code
            return Ending("start-failed", None, None, _now(), f"{reason}: {exc.message}")
        except OSError as exc:  # a bind directory that cannot be created or read
            return Ending("start-failed", None, None, _now(), f"cannot prepare a mount: {exc}")
        try:
            started = await self.runtime.run(
                RunSpec(
                    name=container_name(spec.run_id),
                    image=spec.container.image,
                    command=spec.container.command,
                    environment=dict(spec.container.environment),
                    labels=labels,
                    networks=tuple(spec.container.networks),
                    mounts=prepared,
                    restart=False,
                )
            )
        except RuntimeFailed as exc:
            return Ending("start-failed", None, None, _now(), f"the container did not start: {exc}")
        started_at = _now()
        self._on_started(started.container_id, started_at)
        try:
            return await self._follow(started.container_id, started_at)
        finally:
            with contextlib.suppress(RuntimeFailed, EngineError):
                await self.runtime.remove(started.container_id)

    async def _exec(self) -> Ending:
        outcome = await run_exec(self.runtime, self.start, self._stop, self._emit, self._on_started)
        return Ending(
            outcome.ended,
            outcome.exit_code,
            outcome.started_at,
            _now(),
            outcome.failure_summary,
            outcome.code,
        )

    def _emit(self, found: list[tuple[LogStreamName, str]]) -> None:
        lines: list[TaskRunLine] = []
        for stream, message in found:
            self._sequence += 1
            lines.append(
                TaskRunLine(
                    sequence=self._sequence,
                    timestamp=_now(),
                    stream=stream,
                    message=message[:MAX_LINE_CHARS],
                )
            )
        self._on_lines(lines)

    async def _follow(self, container_id: str, started_at: datetime) -> Ending:
        reader = asyncio.create_task(self._read_output(container_id))
        waiter = asyncio.create_task(self.runtime.wait_exit(container_id))
        stopper = asyncio.create_task(self._stop.wait())
        ended: TaskRunEnd = "exited"
        try:
            done, _ = await asyncio.wait(
                {waiter, stopper},
                timeout=self.start.timeout_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if waiter not in done:
                ended = "stopped" if stopper in done else "timed-out"
                await self.runtime.stop(container_id, STOP_GRACE_SECONDS)
            code = await waiter
        except (EngineError, RuntimeFailed) as exc:
            reader.cancel()
            return Ending("lost", None, started_at, _now(), f"the engine lost the run: {exc}")
        finally:
            stopper.cancel()
        finished_at = _now()
        with contextlib.suppress(TimeoutError, EngineError):
            await asyncio.wait_for(reader, _DRAIN_SECONDS)
        summary = None
        if ended == "timed-out":
            summary = f"killed after the {self.start.timeout_seconds} s timeout"
        elif ended == "stopped":
            summary = "stopped (replaced by a newer run, or the task was deleted)"
        elif code != 0:
            summary = f"the command exited with status {code}"
        return Ending(ended, code, started_at, finished_at, summary)

    async def _read_output(self, container_id: str) -> None:
        body = await self.runtime.open_logs(container_id, follow=True, tail=None, since=None)
        decoder = LineDecoder(tty=False)
        try:
            async for data in body.content.iter_any():
                lines: list[TaskRunLine] = []
                for stream, ts_ns, _text, message in decoder.feed(data):
                    self._sequence += 1
                    when = datetime.fromtimestamp(ts_ns / 1e9, UTC) if ts_ns else _now()
                    lines.append(
                        TaskRunLine(
                            sequence=self._sequence,
                            timestamp=when,
                            stream=stream,
                            message=message[:MAX_LINE_CHARS],
                        )
                    )
                if lines:
                    self._on_lines(lines)
        finally:
            body.close()

    @property
    def line_count(self) -> int:
        """Lines read so far."""
        return self._sequence


def _now() -> datetime:
    return datetime.now(UTC)
