"""The agent's terminal feature on real local ptys, with a recording link instead of a socket."""

import asyncio
import base64
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from agent.features import LinkContext
from agent.settings import AgentSettings
from agent.terminal.feature import TerminalFeature
from agent.terminal.pty_host import MAX_PENDING_INPUT_BYTES, PtyProcess
from shared.errors import ErrorCode
from shared.messages import AgentMessage, ErrorMessage, IdSequence
from shared.messages.terminal import (
    TERMINAL_CAPABILITY,
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
from tests.fakes.runtime import FakeRuntime
from tests.polling import eventually

HOST = AgentSettings(allow_host_shell=True)


class RecordingLink:
    """Collects what the feature sends; output bytes are decoded and joined."""

    def __init__(self) -> None:
        self.frames: list[AgentMessage] = []
        self.context = LinkContext(send=self.send, ids=IdSequence())

    async def send(self, message: AgentMessage) -> None:
        self.frames.append(message)

    def output(self, session_id: str = "t1") -> bytes:
        return b"".join(
            base64.b64decode(f.data)
            for f in self.frames
            if isinstance(f, TermOutput) and f.session_id == session_id
        )

    def of(self, kind: type[AgentMessage]) -> list[AgentMessage]:
        return [f for f in self.frames if isinstance(f, kind)]


@pytest.fixture
async def feature() -> AsyncIterator[TerminalFeature]:
    made = TerminalFeature(FakeRuntime(), HOST)
    task = asyncio.create_task(made.run())
    await asyncio.sleep(0)  # one turn so run() is started before frames arrive
    try:
        yield made
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _open(command: list[str], *, credit: int = 256 * 1024, scope: str = "server") -> TermOpen:
    return TermOpen(
        id=1,
        session_id="t1",
        scope=scope,  # type: ignore[arg-type]
        command=command,
        rows=24,
        cols=80,
        initial_credit_bytes=credit,
    )


def _input(data: bytes, message_id: int = 2) -> TermInput:
    return TermInput(id=message_id, session_id="t1", data=base64.b64encode(data).decode())


async def test_capabilities_depend_on_the_local_host_shell_setting() -> None:
    assert TerminalFeature(FakeRuntime(), AgentSettings()).capabilities == [TERMINAL_CAPABILITY]
    assert TERMINAL_HOST_CAPABILITY in TerminalFeature(FakeRuntime(), HOST).capabilities


async def test_host_shell_refused_unless_allowed() -> None:
    refusing = TerminalFeature(FakeRuntime(), AgentSettings())
    task = asyncio.create_task(refusing.run())
    await asyncio.sleep(0)  # one turn so run() is started before frames arrive
    link = RecordingLink()
    try:
        refusing.receive(_open(["/bin/sh"]), link.context)
        await eventually(lambda: _true(link.frames), what="an answer")
        [answer] = link.frames
        assert isinstance(answer, ErrorMessage)
        assert answer.re == 1
        assert answer.error.code == ErrorCode.FORBIDDEN
        assert refusing.session_count() == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _true(value: object) -> bool:
    return bool(value)


async def test_runs_a_command_and_reports_its_exit_code(feature: TerminalFeature) -> None:
    link = RecordingLink()
    feature.receive(_open(["/bin/sh", "-c", "echo hello-pty; exit 7"]), link.context)
    await eventually(lambda: _true(link.of(TermExit)), what="term_exit")
    assert isinstance(link.frames[0], TermOpened)
    assert link.frames[0].re == 1
    assert b"hello-pty" in link.output()
    [done] = link.of(TermExit)
    assert isinstance(done, TermExit)
    assert done.exit_code == 7
    assert done.reason == "exited"
    # Output frames are numbered and all come before the exit.
    seqs = [f.seq for f in link.of(TermOutput) if isinstance(f, TermOutput)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert link.frames[-1] is done
    assert feature.session_count() == 0


async def test_input_resize_and_close(feature: TerminalFeature) -> None:
    link = RecordingLink()
    feature.receive(_open(["/bin/sh"]), link.context)
    await eventually(lambda: _true(link.of(TermOpened)), what="term_opened")
    feature.receive(TermResize(id=2, session_id="t1", rows=33, cols=111), link.context)
    feature.receive(_input(b"stty size; echo mark-$((6*7))\n", 3), link.context)
    await eventually(lambda: _true(b"mark-42" in link.output()), what="command output")
    assert b"33 111" in link.output()
    feature.receive(TermClose(id=4, session_id="t1"), link.context)
    await eventually(lambda: _true(link.of(TermExit)), what="term_exit")
    [done] = link.of(TermExit)
    assert isinstance(done, TermExit)
    assert done.reason == "closed"
    # The hang-up: SIGHUP, or SIGKILL when the shell did not exit within the grace period (a
    # heavily loaded machine); either way the signal's code, never a normal exit.
    assert done.exit_code in (128 + signal.SIGHUP, 128 + signal.SIGKILL)


async def test_output_stops_without_credit_and_resumes_with_it(feature: TerminalFeature) -> None:
    link = RecordingLink()
    feature.receive(_open(["/bin/sh", "-c", "yes"], credit=4096), link.context)
    await eventually(lambda: _true(len(link.output()) >= 4096), what="the first window")
    await asyncio.sleep(0.2)  # a flood would have been read by now if credit were ignored
    assert len(link.output()) == 4096
    feature.receive(TermCredit(id=2, session_id="t1", bytes=8192), link.context)
    await eventually(lambda: _true(len(link.output()) >= 4096 + 8192), what="more output")
    await asyncio.sleep(0.1)  # no more than the credit, however long it runs
    assert len(link.output()) == 4096 + 8192
    feature.receive(TermClose(id=3, session_id="t1"), link.context)
    await eventually(lambda: _true(link.of(TermExit)), what="term_exit")


async def test_link_detach_hangs_up_and_reaps(feature: TerminalFeature) -> None:
    link = RecordingLink()
    feature.receive(_open(["/bin/sh", "-c", "sleep 300"]), link.context)
    await eventually(lambda: _true(link.of(TermOpened)), what="term_opened")
    before = len(os.listdir("/proc/self/fd"))
    feature.detached(link.context)
    await eventually(lambda: _true(feature.session_count() == 0), what="the session to end")
    assert len(os.listdir("/proc/self/fd")) < before  # the pty master was released


async def test_idle_sessions_are_closed() -> None:
    idle = TerminalFeature(FakeRuntime(), replace(HOST, terminal_idle_seconds=0.3))
    task = asyncio.create_task(idle.run())
    await asyncio.sleep(0)  # one turn so run() is started before frames arrive
    link = RecordingLink()
    try:
        idle.receive(_open(["/bin/sh", "-c", "sleep 300"]), link.context)
        await eventually(lambda: _true(link.of(TermExit)), timeout=5, what="idle close")
        [done] = link.of(TermExit)
        assert isinstance(done, TermExit)
        assert done.reason == "idle"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_resource_without_running_container_is_not_found(feature: TerminalFeature) -> None:
    link = RecordingLink()
    request = _open([], scope="resource").model_copy(update={"resource_id": "res_missing"})
    feature.receive(request, link.context)
    await eventually(lambda: _true(link.frames), what="an answer")
    [answer] = link.frames
    assert isinstance(answer, ErrorMessage)
    assert answer.error.code == ErrorCode.NOT_FOUND


async def test_pty_exit_code_of_a_signalled_process() -> None:
    proc = await PtyProcess.spawn(["/bin/sh", "-c", "kill -TERM $$"], rows=5, cols=5, credit=1024)
    assert await proc.process.wait() == -signal.SIGTERM
    assert proc.exit_code() == 128 + signal.SIGTERM
    proc.close()


async def test_input_backlog_is_bounded_when_the_process_does_not_read() -> None:
    proc = await PtyProcess.spawn(["/bin/sh", "-c", "sleep 30"], rows=5, cols=5, credit=1 << 20)
    try:
        accepted = 0
        while proc.write(b"k" * 16384):
            accepted += 16384
            assert accepted <= MAX_PENDING_INPUT_BYTES + 64 * 1024  # the kernel takes a little
        assert accepted >= MAX_PENDING_INPUT_BYTES - 16384
    finally:
        await proc.hang_up(grace=0.5)
