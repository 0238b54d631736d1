"""The terminal feature: opens ptys for ``term_open`` (docker exec into a resource's container, or
a host login shell when allowed locally), pumps output under credit, and ends them."""

import asyncio
import base64
import binascii
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from agent.features import LinkContext
from agent.runtime import ContainerRuntime
from agent.settings import AgentSettings
from agent.terminal.pty_host import PtyProcess
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound, PlatformError, Unavailable
from shared.messages import UNSTAMPED
from shared.messages.terminal import (
    TERMINAL_CAPABILITY,
    TERMINAL_COORDINATOR_TYPES,
    TERMINAL_HOST_CAPABILITY,
    TermClose,
    TermCredit,
    TermExit,
    TermInput,
    TermOpen,
    TermOpened,
    TermOutput,
    TermResize,
)

logger = logging.getLogger(__name__)

TERM: Final = "xterm-256color"
# After the process exits, remaining output is still sent if credit comes within this long.
FLUSH_SECONDS: Final = 5.0
MAX_SESSIONS: Final = 64

ExitReason = Literal["exited", "closed", "idle", "error"]


@dataclass(eq=False)
class _Session:
    session_id: str
    link: LinkContext
    pty: PtyProcess
    last_activity: float = field(default_factory=time.monotonic)
    seq: int = 0
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    close_reason: "ExitReason" = "closed"


def host_shell() -> list[str]:
    """The login shell for host sessions: ``$SHELL``, else bash, else sh."""
    for candidate in (os.environ.get("SHELL", ""), "/bin/bash", "/bin/sh"):
        if candidate and os.access(candidate, os.X_OK):
            return [candidate, "-l"]
    return ["/bin/sh", "-l"]


class TerminalFeature:
    """Hosts the agent's terminal sessions; every session task lives in ``run``'s task group."""

    def __init__(self, runtime: ContainerRuntime, settings: AgentSettings) -> None:
        self._runtime = runtime
        self._settings = settings
        self._sessions: dict[str, _Session] = {}
        self._opening: set[str] = set()
        self._tasks: asyncio.TaskGroup | None = None

    @property
    def message_types(self) -> frozenset[str]:
        """Frames this feature consumes."""
        return TERMINAL_COORDINATOR_TYPES

    @property
    def capabilities(self) -> list[str]:
        """``terminal.v1`` always; ``terminal.host.v1`` only when host shells are allowed."""
        if self._settings.allow_host_shell:
            return [TERMINAL_CAPABILITY, TERMINAL_HOST_CAPABILITY]
        return [TERMINAL_CAPABILITY]

    def session_count(self) -> int:
        """Live sessions (for tests and diagnostics)."""
        return len(self._sessions)

    async def run(self) -> None:
        """Own the session tasks until cancelled (then every pty is hung up)."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                await asyncio.Event().wait()
            finally:
                self._tasks = None
                for session in self._sessions.values():
                    session.closing.set()

    async def attached(self, link: LinkContext) -> None:
        """Nothing to do per link: sessions start with ``term_open``."""

    def detached(self, link: LinkContext) -> None:
        """The link is gone: hang up every session that was opened on it."""
        for session in self._sessions.values():
            if session.link is link:
                session.close_reason = "closed"
                session.closing.set()

    def refused(self, re: int, error: PlatformError, link: LinkContext) -> bool:
        """Nothing of this feature waits on an error frame."""
        return False  # its frames are not answered with errors it waits for

    def receive(self, message: Any, link: LinkContext) -> None:
        """Dispatch one frame; never blocks (opening runs in a task)."""
        if isinstance(message, TermOpen):
            if self._tasks is None:
                raise Unavailable("the terminal feature is not running")
            self._tasks.create_task(self._open(message, link))
            return
        session = self._sessions.get(message.session_id)
        if session is None or session.link is not link:
            if isinstance(message, TermClose | TermCredit):
                return  # late frames for a session that just ended are harmless
            raise NotFound(f"no terminal session {message.session_id!r} on this agent")
        if isinstance(message, TermInput):
            try:
                data = base64.b64decode(message.data, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidRequest("term_input data is not standard base64") from exc
            session.last_activity = time.monotonic()
            if not session.pty.write(data):
                logger.warning("[%s] terminal input backlog full; dropped", message.session_id)
        elif isinstance(message, TermResize):
            session.pty.resize(message.rows, message.cols)
        elif isinstance(message, TermCredit):
            session.pty.grant(message.bytes)
        elif isinstance(message, TermClose):
            session.close_reason = "closed"
            session.closing.set()

    # ---- opening ---------------------------------------------------------------------------

    async def _argv(self, request: TermOpen) -> tuple[list[str], str | None]:
        """The command line to run on the pty, and the container it enters (if any)."""
        if request.scope == "server":
            if not self._settings.allow_host_shell:
                raise Forbidden(
                    "host shells are disabled on this server "
                    "(set BERTH_AGENT_ALLOW_HOST_SHELL=1 in the agent's local configuration)"
                )
            return (list(request.command) if request.command else host_shell()), None
        if not request.resource_id:
            raise InvalidRequest("a resource terminal needs resourceId")
        docker = shutil.which("docker")
        if docker is None:
            raise Unavailable("the docker CLI is not installed on this server")
        container_id = await self._container(request.resource_id, request.deployment_id)
        argv = [docker, "exec", "-it", "-e", f"TERM={TERM}"]
        if request.working_directory:
            argv += ["-w", request.working_directory]
        argv.append(container_id)
        argv += list(request.command) if request.command else ["/bin/sh"]
        return argv, container_id

    async def _container(self, resource_id: str, deployment_id: str | None) -> str:
        containers = [
            c for c in await self._runtime.list_managed(resource_id) if c.state == "running"
        ]
        if deployment_id:
            containers = [c for c in containers if c.deployment_id == deployment_id]
        if not containers:
            which = f"deployment {deployment_id}" if deployment_id else f"resource {resource_id}"
            raise NotFound(f"no running container of {which} on this server")
        # The newest running container is the current deployment's (the old one drains away).
        newest = max(containers, key=lambda c: (c.created_at is not None, c.created_at))
        return newest.container_id

    async def _open(self, request: TermOpen, link: LinkContext) -> None:
        try:
            if request.session_id in self._sessions or request.session_id in self._opening:
                raise Conflict(f"terminal session {request.session_id!r} already exists")
            if len(self._sessions) + len(self._opening) >= MAX_SESSIONS:
                raise Unavailable(f"this agent already hosts {MAX_SESSIONS} terminal sessions")
            self._opening.add(request.session_id)
            try:
                argv, container_id = await self._argv(request)
                env = {**os.environ, "TERM": TERM}
                cwd = request.working_directory if request.scope == "server" else None
                try:
                    pty = await PtyProcess.spawn(
                        argv,
                        rows=request.rows,
                        cols=request.cols,
                        credit=request.initial_credit_bytes,
                        env=env,
                        cwd=cwd,
                        # docker exec -it relays to the container's own terminal.
                        relay=request.scope != "server",
                    )
                except OSError as exc:
                    raise Unavailable(f"cannot start the terminal: {exc}") from exc
            finally:
                self._opening.discard(request.session_id)
            session = _Session(request.session_id, link, pty)
            self._sessions[request.session_id] = session
            try:
                await link.send(
                    TermOpened(
                        id=UNSTAMPED,
                        re=request.id,
                        session_id=request.session_id,
                        container_id=container_id,
                        command=argv[:64],
                        working_directory=request.working_directory,
                    )
                )
            except BaseException:
                await self._finish(session, "closed", "")
                raise
        except PlatformError as exc:
            try:
                await link.fail(request.id, exc)
            except Exception:
                logger.debug("could not answer term_open %s", request.id)
            return
        except Exception:
            logger.debug("term_open %s not answered: the link is gone", request.id)
            return
        # Only the program is logged: arguments may carry secrets.
        logger.info("[%s] terminal opened: %s", session.session_id, argv[0])
        await self._serve(session)

    # ---- serving ---------------------------------------------------------------------------

    async def _send_output(self, session: _Session, data: bytes) -> None:
        session.seq += 1
        await session.link.send(
            TermOutput(
                id=UNSTAMPED,
                session_id=session.session_id,
                seq=session.seq,
                data=base64.b64encode(data).decode("ascii"),
            )
        )

    async def _pump(self, session: _Session) -> None:
        """Send output until end of output; activity keeps the idle timer fresh."""
        while data := await session.pty.read():
            session.last_activity = time.monotonic()
            await self._send_output(session, data)

    async def _idle_watch(self, session: _Session) -> None:
        limit = self._settings.terminal_idle_seconds
        while True:
            remaining = session.last_activity + limit - time.monotonic()
            if remaining <= 0:
                session.close_reason = "idle"
                session.closing.set()
                return
            await asyncio.sleep(remaining)

    async def _serve(self, session: _Session) -> None:
        try:
            reason, message = await self._watch(session)
        except asyncio.CancelledError:
            # The daemon is stopping: no zombie and no open pty left behind.
            self._sessions.pop(session.session_id, None)
            await asyncio.shield(session.pty.hang_up(grace=0.5))
            raise
        await self._finish(session, reason, message)

    async def _watch(self, session: _Session) -> tuple[ExitReason, str]:
        """Run until the process exits or the session is closed; return why and a message."""
        reason: ExitReason = "exited"
        message = ""
        try:
            async with asyncio.TaskGroup() as tasks:
                pump = tasks.create_task(self._pump(session))
                idle = tasks.create_task(self._idle_watch(session))
                exited = tasks.create_task(session.pty.process.wait())
                closing = tasks.create_task(session.closing.wait())
                await asyncio.wait({exited, closing}, return_when=asyncio.FIRST_COMPLETED)
                idle.cancel()
                if closing.done():
                    reason = session.close_reason
                    pump.cancel()
                    exited.cancel()
                else:
                    closing.cancel()
                    # The process ended: what it wrote last is still in the pty; send it while
                    # credit allows, but never wait for credit forever.
                    try:
                        async with asyncio.timeout(FLUSH_SECONDS):
                            await pump
                    except TimeoutError:
                        pump.cancel()
                        message = "output after exit was cut short"
        except* Exception as group:
            # Most likely the link dropped mid-send; the session cannot outlive its link.
            reason, message = "error", str(group.exceptions[0])[:1000]
        return reason, message

    async def _finish(self, session: _Session, reason: ExitReason, message: str) -> None:
        code = await session.pty.hang_up()
        self._sessions.pop(session.session_id, None)
        logger.info("[%s] terminal ended (%s, exit %s)", session.session_id, reason, code)
        try:
            await session.link.send(
                TermExit(
                    id=UNSTAMPED,
                    session_id=session.session_id,
                    exit_code=code,
                    reason=reason,
                    message=message,
                )
            )
        except Exception:
            logger.debug("[%s] exit not sent: the link is gone", session.session_id)
