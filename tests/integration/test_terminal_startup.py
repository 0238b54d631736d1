"""A terminal's first moments: keys typed and resizes sent right after ``ready``, while the
agent's ``docker exec`` is still starting, reach the process exactly once and take effect."""

import asyncio
import os
import re
import sys
from pathlib import Path

import docker
import pytest

from tests.harness import Coordinator, eventually, scaled
from tests.integration.stacks import workload
from tests.integration.test_terminals import Term, attach, opened, terminals, token

pytestmark = pytest.mark.docker

__all__ = ["terminals", "token"]  # fixtures, used by name

SIZE = re.compile(rb"(\d+) (\d+)\r?\n")
PROMPT = re.compile(rb"[#$] ")


async def _read_until(term: Term, pattern: re.Pattern[bytes], timeout: float) -> re.Match[bytes]:
    """Read until ``pattern`` matches the output so far (nothing is consumed)."""
    try:
        async with asyncio.timeout(scaled(timeout)):
            while not (found := pattern.search(term.output)):
                assert await term._next(), f"closed early: {bytes(term.output[-300:])!r}"
    except TimeoutError:
        seen = bytes(term.output[-300:])
        raise AssertionError(f"no {pattern.pattern!r} within {timeout} s in {seen!r}") from None
    return found


async def test_typed_ahead_keys_are_echoed_once(
    terminals: Coordinator, token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(terminals, token, tmp_path / "agent", "sleep 3600")
    try:
        await stack.deploy()
        item = await opened(
            terminals,
            token,
            {"kind": "resource", "resourceId": stack.resource_id},
            command=["sh", "-c", 'read line; echo "got-$line"'],
        )
        term = await attach(terminals, item)
        assert term.controls[0]["type"] == "ready"
        # Sent at once, long before `docker exec` has put its terminal in raw mode.
        await term.ws.send_bytes(b"abc")
        await term.ws.send_bytes(b"\r")
        answer = await _read_until(term, re.compile(rb"got-abc\r?\n"), timeout=15)
        # Before the answer there is only the echo: the container's terminal echoes the line
        # once; the agent's own pty must not echo it too ("abcabc").
        echo = bytes(term.output[: answer.start()])
        assert echo.count(b"abc") == 1, echo
        assert (await term.end()) == {"type": "exit", "exitCode": 0}
    finally:
        await stack.agent.stop()


async def test_an_early_resize_is_the_size_the_process_sees(
    terminals: Coordinator, token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await workload(terminals, token, tmp_path / "agent", "sleep 3600")
    try:
        await stack.deploy()
        item = await opened(terminals, token, {"kind": "resource", "resourceId": stack.resource_id})
        term = await attach(terminals, item)
        assert term.controls[0]["type"] == "ready"
        # At once after ready, while `docker exec` is still starting: the size must stick.
        await term.ws.send_json({"type": "resize", "rows": 37, "cols": 111})
        # The shell's prompt, before asking: under load `docker exec` can take seconds to start,
        # and the question is whether the size sent above sticks, not how fast the shell starts.
        prompt = await _read_until(term, PROMPT, timeout=20)
        del term.output[: prompt.end()]
        seen: list[bytes] = []

        async def resized() -> bool:
            await term.run("stty size")
            found = await _read_until(term, SIZE, timeout=10)
            size, end = bytes(found.group(0)), found.end()
            seen.append(size)
            del term.output[:end]
            return size.split() == [b"37", b"111"]

        try:
            await eventually(resized, timeout=20, what="the process to see 37 x 111")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; sizes seen: {seen}") from None
        await term.run("exit 0")
        assert (await term.end()) == {"type": "exit", "exitCode": 0}
    finally:
        await stack.agent.stop()


async def test_a_piped_cli_session_prints_no_terminal_queries(
    terminals: Coordinator, token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    """busybox's shell asks the terminal for the cursor position (ESC[6n); with input from a
    pipe nothing can answer, and the query must not end up in the output as text."""
    stack = await workload(terminals, token, tmp_path / "agent", "sleep 3600")
    try:
        await stack.deploy()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from coordinator.client.cli import main; main()",
            "--url",
            terminals.url,
            "--token",
            token,
            "terminal",
            stack.resource_id,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")},
        )
        async with asyncio.timeout(scaled(30)):
            out, err = await process.communicate(b"echo piped-$((6*7))\nexit 3\n")
        assert b"piped-42" in out, (out, err)
        assert process.returncode == 3, (out, err)
        assert b"\x1b[6n" not in out, out
    finally:
        await stack.agent.stop()
