"""The task-run feature: starts runs the coordinator hands over, streams their output, and
reports each result on every link until it is acknowledged (kept on disk once finished, so a
run that ends while the link is down, or before an agent restart, is still reported)."""

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from agent.features import LinkContext
from agent.runtime import SERVER_LABEL, ContainerRuntime, EngineError
from agent.tasks.runner import RUN_LABEL, Ending, TaskRunner
from shared.errors import PlatformError, RuntimeFailed
from shared.messages import UNSTAMPED
from shared.messages.tasks import (
    TASKS_CAPABILITY,
    TASKS_COORDINATOR_TYPES,
    TASKS_DATA_CAPABILITY,
    TASKS_EXEC_CAPABILITY,
    TaskRunAccepted,
    TaskRunInventory,
    TaskRunLine,
    TaskRunOutput,
    TaskRunResult,
    TaskRunResultAck,
    TaskRunStart,
    TaskRunStarted,
    TaskRunStop,
    TaskRunStopAck,
)

logger = logging.getLogger(__name__)

# Output kept per run until the result is acknowledged (the rest is counted, not kept).
MAX_KEPT_LINES: Final = 10_000
_FRAME_LINES: Final = 500
# Text per output frame, well inside the 1 MiB frame limit even when JSON escapes every byte.
_FRAME_CHARS: Final = 128 * 1024


def frames(lines: list[TaskRunLine]) -> list[list[TaskRunLine]]:
    """``lines`` cut into output frames of at most ``_FRAME_LINES`` lines and ``_FRAME_CHARS``
    characters of text."""
    found: list[list[TaskRunLine]] = []
    current: list[TaskRunLine] = []
    size = 0
    for line in lines:
        if current and (len(current) == _FRAME_LINES or size + len(line.message) > _FRAME_CHARS):
            found.append(current)
            current, size = [], 0
        current.append(line)
        size += len(line.message)
    if current:
        found.append(current)
    return found


@dataclass
class RunRecord:
    """A run this agent knows: its output so far and, once finished, its result."""

    run_id: str
    lines: list[TaskRunLine] = field(default_factory=list)
    started: TaskRunStarted | None = None
    result: TaskRunResult | None = None
    runner: TaskRunner | None = None


class TaskFeature:
    """Serves ``task_run_start``, ``task_run_stop`` and ``task_run_result_ack``."""

    def __init__(
        self, runtime: ContainerRuntime, state_dir: Path, bind_mount_roots: tuple[str, ...] = ()
    ) -> None:
        self.runtime = runtime
        self.bind_mount_roots = bind_mount_roots
        self.journal = state_dir / "task-runs"
        self.records: dict[str, RunRecord] = {}
        self._link: LinkContext | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def message_types(self) -> frozenset[str]:
        """The coordinator's task-run frames."""
        return TASKS_COORDINATOR_TYPES

    @property
    def capabilities(self) -> list[str]:
        """``tasks.v1``, ``tasks.data.v1`` (runs get their mounts and networks) and
        ``tasks.exec.v1`` (runs in the resource's running container)."""
        return [TASKS_CAPABILITY, TASKS_DATA_CAPABILITY, TASKS_EXEC_CAPABILITY]

    async def run(self) -> None:
        """Load the finished runs not yet acknowledged, then hold the runs until cancelled."""
        self.journal.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in sorted(self.journal.glob("*.json")):
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                record = RunRecord(
                    run_id=str(raw["runId"]),
                    lines=[TaskRunLine.model_validate(line) for line in raw["lines"]],
                    result=TaskRunResult.model_validate(raw["result"]),
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("dropping unreadable task-run journal %s: %s", path, exc)
                path.unlink(missing_ok=True)
                continue
            self.records[record.run_id] = record
        await self._remove_orphans()
        try:
            await asyncio.Event().wait()
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _remove_orphans(self) -> None:
        """Remove this server's task containers left by an agent that stopped mid-run: their
        runs are unknown now, so the coordinator records them failed (``task_run_inventory``)."""
        server_id = getattr(self.runtime, "server_id", None)
        if not isinstance(server_id, str):
            return  # cannot tell this agent's containers from another's on a shared engine
        try:
            found = await self.runtime.engine_containers(
                all=True, size=False, filters={"label": [RUN_LABEL, f"{SERVER_LABEL}={server_id}"]}
            )
        except EngineError as exc:
            logger.warning("could not look for leftover task containers: %s", exc)
            return
        for container in found:
            run_id = (container.get("Labels") or {}).get(RUN_LABEL)
            if run_id in self.records:
                continue
            logger.info("removing the container of task run %s (the agent restarted)", run_id)
            with contextlib.suppress(RuntimeFailed, EngineError):
                await self.runtime.remove(str(container.get("Id")))

    async def attached(self, link: LinkContext) -> None:
        """Tell the coordinator which runs exist, then replay output and results."""
        self._link = link
        await link.send(TaskRunInventory(id=UNSTAMPED, run_ids=list(self.records)))
        for record in list(self.records.values()):
            if record.started is not None:
                await link.send(record.started)
            for lines in frames(record.lines):
                await link.send(TaskRunOutput(id=UNSTAMPED, run_id=record.run_id, lines=lines))
            if record.result is not None:
                await link.send(record.result)

    def detached(self, link: LinkContext) -> None:
        """Output and results wait for the next link."""
        if self._link is link:
            self._link = None

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """Nothing waits on an error frame: an unacknowledged result is replayed."""
        return False

    def receive(self, message: Any, link: LinkContext) -> None:
        """Answer in order without blocking the reader."""
        match message:
            case TaskRunStart():
                known = message.run_id in self.records
                if not known:
                    self._begin(message)
                reply: Any = TaskRunAccepted(
                    id=UNSTAMPED, re=message.id, run_id=message.run_id, already_known=known
                )
            case TaskRunStop():
                record = self.records.get(message.run_id)
                state: Literal["stopping", "finished", "unknown"] = "unknown"
                if record is not None and record.result is not None:
                    state = "finished"
                elif record is not None and record.runner is not None:
                    record.runner.stop()
                    state = "stopping"
                reply = TaskRunStopAck(
                    id=UNSTAMPED, re=message.id, run_id=message.run_id, state=state
                )
            case TaskRunResultAck():
                self._forget(message.run_id)
                return
            case _:
                return
        self._spawn(link.send(reply))

    def _begin(self, start: TaskRunStart) -> None:
        record = RunRecord(run_id=start.run_id)
        record.runner = TaskRunner(
            self.runtime,
            start,
            on_lines=lambda lines: self._output(record, lines),
            on_started=lambda cid, at: self._started(record, cid, at),
            bind_mount_roots=self.bind_mount_roots,
        )
        self.records[start.run_id] = record
        self._spawn(self._execute(record, record.runner))

    async def _execute(self, record: RunRecord, runner: TaskRunner) -> None:
        try:
            ending = await runner.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("task run %s failed", record.run_id)
            ending = Ending("lost", None, None, _now(), f"the agent failed the run: {exc}")
        record.runner = None
        record.result = TaskRunResult(
            id=UNSTAMPED,
            run_id=record.run_id,
            outcome="succeeded" if ending.succeeded else "failed",
            ended=ending.ended,
            exit_code=ending.exit_code,
            started_at=ending.started_at,
            finished_at=ending.finished_at,
            failure_summary=ending.failure_summary,
            line_count=runner.line_count,
            failure_code=ending.failure_code,
        )
        await asyncio.to_thread(self._write_journal, record)
        await self._send(record.result)

    def _started(self, record: RunRecord, container_id: str, at: datetime) -> None:
        record.started = TaskRunStarted(
            id=UNSTAMPED, run_id=record.run_id, container_id=container_id, started_at=at
        )
        self._spawn(self._send(record.started))

    def _output(self, record: RunRecord, lines: list[TaskRunLine]) -> None:
        room = MAX_KEPT_LINES - len(record.lines)
        if room > 0:
            record.lines.extend(lines[:room])
        for part in frames(lines):
            self._spawn(self._send(TaskRunOutput(id=UNSTAMPED, run_id=record.run_id, lines=part)))

    async def _send(self, message: Any) -> None:
        link = self._link
        if link is None:
            return  # replayed from the record on the next link
        with contextlib.suppress(Exception):
            await link.send(message)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _write_journal(self, record: RunRecord) -> None:
        if record.result is None:
            return
        payload = {
            "runId": record.run_id,
            "lines": [line.model_dump(mode="json", by_alias=True) for line in record.lines],
            "result": record.result.model_dump(mode="json", by_alias=True),
        }
        path = self.journal / f"{record.run_id}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(temporary, path)

    def _forget(self, run_id: str) -> None:
        record = self.records.get(run_id)
        if record is None or record.result is None:
            return
        del self.records[run_id]
        (self.journal / f"{run_id}.json").unlink(missing_ok=True)


def _now() -> datetime:
    return datetime.now(UTC)
