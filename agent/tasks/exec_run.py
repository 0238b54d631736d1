"""An ``exec`` task run: the command runs in the resource's running container (docker exec),
its output is read as it is written, a deadline or a stop kills it, and its exit code comes
from the engine.

The engine cannot kill an exec, so the command's shell first writes its pid to a file in the
container's ``/tmp`` and then ``exec``s the command in place (same pid); a timeout or stop
kills that pid with a second exec. A background process the command started itself may
outlive it (it belongs to the serving container, as with ``docker exec``).
"""

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from agent.logstream.decode import FrameDemuxer
from agent.runtime import ContainerRuntime, EngineError, LogBody
from shared.messages.logs import LogStreamName
from shared.messages.tasks import TaskRunEnd, TaskRunFailureCode, TaskRunStart

NO_RUNNING_CONTAINER: Final[TaskRunFailureCode] = "no-running-container"
_WRAPPER: Final = '{ echo $$ > "$0"; } 2>/dev/null; exec /bin/sh -c "$1"'
_KILL: Final = 'kill -KILL "$(cat "$0")" 2>/dev/null; rm -f "$0"'
_CLEAN: Final = 'rm -f "$0"'
# After the output ends, the engine gets this long to report the exit code.
_EXIT_CODE_SECONDS: Final = 5.0
_DRAIN_SECONDS: Final = 5.0

EmitLines = Callable[[list[tuple[LogStreamName, str]]], None]


@dataclass(frozen=True)
class ExecOutcome:
    """How the exec ended (the runner turns it into an ``Ending``)."""

    ended: TaskRunEnd
    exit_code: int | None
    container_id: str | None
    started_at: datetime | None
    failure_summary: str | None
    code: TaskRunFailureCode | None = None


async def serving_container(
    runtime: ContainerRuntime, resource_id: str, deployment_id: str
) -> str | None:
    """The running container of the resource: the deployment's if it runs, else the newest."""
    running = [c for c in await runtime.log_sources(resource_id) if c.running]
    if not running:
        return None
    running.sort(key=lambda c: (c.deployment_id == deployment_id, c.created), reverse=True)
    return running[0].container_id


class LineSplitter:
    """Multiplexed exec output into ``(stream, line)`` pairs (a line may span frames)."""

    def __init__(self) -> None:
        self._demux = FrameDemuxer()
        self._pending: dict[LogStreamName, bytes] = {"stdout": b"", "stderr": b""}

    def feed(self, data: bytes) -> list[tuple[LogStreamName, str]]:
        """The complete lines ``data`` finishes."""
        found: list[tuple[LogStreamName, str]] = []
        for stream, payload in self._demux.feed(data):
            buffer = self._pending[stream] + payload
            *complete, self._pending[stream] = buffer.split(b"\n")
            found.extend((stream, part.decode("utf-8", "replace")) for part in complete)
        return found

    def rest(self) -> list[tuple[LogStreamName, str]]:
        """What is left once the output ends (a last line without a newline)."""
        found = [(s, p.decode("utf-8", "replace")) for s, p in self._pending.items() if p]
        self._pending = {"stdout": b"", "stderr": b""}
        return found


async def run_exec(
    runtime: ContainerRuntime,
    start: TaskRunStart,
    stop: asyncio.Event,
    emit: EmitLines,
    on_started: Callable[[str, datetime], None],
) -> ExecOutcome:
    """Run ``start``'s command in the resource's running container, to its end."""
    try:
        container_id = await serving_container(runtime, start.resource_id, start.deployment_id)
    except EngineError as exc:
        return ExecOutcome("start-failed", None, None, None, f"the engine did not answer: {exc}")
    if container_id is None:
        return ExecOutcome(
            "start-failed",
            None,
            None,
            None,
            f"{NO_RUNNING_CONTAINER}: resource {start.resource_id} has no running container on "
            "this server to exec in (deploy or start it, or use a fresh-container task)",
            NO_RUNNING_CONTAINER,
        )
    # Inside the serving container, not on the agent's host.
    pidfile = f"/tmp/berth-task-{start.run_id}.pid"  # noqa: S108
    command = ["/bin/sh", "-c", _WRAPPER, pidfile, start.container.command]
    try:
        exec_id, body = await runtime.exec_open(container_id, command, start.container.environment)
    except EngineError as exc:
        return ExecOutcome(
            "start-failed", None, container_id, None, f"the command did not start: {exc}"
        )
    started_at = datetime.now(UTC)
    on_started(container_id, started_at)
    reader = asyncio.create_task(_read(body, emit))
    stopper = asyncio.create_task(stop.wait())
    ended: TaskRunEnd = "exited"
    try:
        done, _ = await asyncio.wait(
            {reader, stopper}, timeout=start.timeout_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        if reader not in done:
            ended = "stopped" if stopper in done else "timed-out"
            await _quietly(runtime, container_id, [_KILL, pidfile])
            with contextlib.suppress(TimeoutError, EngineError):
                await asyncio.wait_for(asyncio.shield(reader), _DRAIN_SECONDS)
        elif reader.exception() is not None:
            return ExecOutcome(
                "lost",
                None,
                container_id,
                started_at,
                f"the engine lost the run: {reader.exception()}",
            )
    finally:
        stopper.cancel()
        if not reader.done():
            reader.cancel()
        body.close()
    code = await _exit_code(runtime, exec_id)
    if ended == "exited":
        await _quietly(runtime, container_id, [_CLEAN, pidfile])
    summary = None
    if ended == "timed-out":
        summary = f"killed after the {start.timeout_seconds} s timeout"
    elif ended == "stopped":
        summary = "stopped (replaced by a newer run, or the task was deleted)"
    elif code != 0:
        summary = f"the command exited with status {code}"
    return ExecOutcome(ended, code, container_id, started_at, summary)


async def _read(body: LogBody, emit: EmitLines) -> None:
    splitter = LineSplitter()
    async for data in body.content.iter_any():
        lines = splitter.feed(data)
        if lines:
            emit(lines)
    if rest := splitter.rest():
        emit(rest)


async def _exit_code(runtime: ContainerRuntime, exec_id: str) -> int | None:
    # The output ends as the process does; the engine may report it a moment later.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _EXIT_CODE_SECONDS
    while True:
        try:
            code = await runtime.exec_exit_code(exec_id)
        except EngineError:
            return None
        if code is not None or loop.time() > deadline:
            return code
        await asyncio.sleep(0.05)


async def _quietly(runtime: ContainerRuntime, container_id: str, script: list[str]) -> None:
    with contextlib.suppress(EngineError):
        _, body = await runtime.exec_open(container_id, ["/bin/sh", "-c", *script], {})
        try:
            async for _ in body.content.iter_any():
                pass
        finally:
            body.close()
