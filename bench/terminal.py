"""Terminal keystroke round trip: client websocket -> coordinator -> agent -> pty and back,
against a direct local pty driven the same way in the same run.

Each path types 'a' and backspace alternately, one key at a time, and times until the echo is
back. The coordinator and the agent are real processes (the agent with host shells enabled);
the client runs here, as a browser or the CLI would.
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from agent.terminal.pty_host import PtyProcess

HOST = "127.0.0.1"
KEYS = (b"a", b"\x7f")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _shell() -> list[str]:
    bash = shutil.which("bash")
    return [bash, "--norc", "--noprofile"] if bash else ["/bin/sh"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds."""
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50": cuts[49] * 1000,
        "p90": cuts[89] * 1000,
        "p99": cuts[98] * 1000,
        "max": ordered[-1] * 1000,
    }


async def _measure(
    send: Callable[[bytes], Awaitable[None]],
    wait_for: Callable[[bytes], Awaitable[None]],
    keys: int,
    warmup: int,
) -> list[float]:
    samples: list[float] = []
    for index in range(warmup + keys):
        started = time.perf_counter()
        await send(KEYS[index % 2])
        # The echo's exact bytes depend on the terminal type (backspace may be "\b \b" or
        # "\b\x1b[K"); readline writes each echo at once, so its first byte marks the trip.
        await wait_for(b"")
        if index >= warmup:
            samples.append(time.perf_counter() - started)
    return samples


async def direct_pty(keys: int, warmup: int) -> list[float]:
    """The baseline: the same shell on a local pty, read and written by this process."""
    pty = await PtyProcess.spawn(
        _shell(), rows=24, cols=80, credit=1 << 40, env={**os.environ, "TERM": "xterm-256color"}
    )
    pending = bytearray()

    async def send(key: bytes) -> None:
        pty.write(key)

    async def wait_for(echo: bytes) -> None:
        while not pending or echo not in pending:
            pending.extend(await pty.read())
        del pending[: pending.index(echo) + len(echo) if echo else len(pending)]

    try:
        await _settle(send, wait_for)
        return await _measure(send, wait_for, keys, warmup)
    finally:
        await pty.hang_up(grace=0.5)


async def _settle(
    send: Callable[[bytes], Awaitable[None]], wait_for: Callable[[bytes], Awaitable[None]]
) -> None:
    # The prompt and job-control chatter arrive first; a marker command flushes them.
    await send(b"echo bench-$((40+2))\r")
    await wait_for(b"bench-42")
    await send(b"PS1=\r")
    await asyncio.sleep(0.3)


async def _api(
    http: aiohttp.ClientSession, method: str, url: str, token: str | None, body: Any = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as response:
        answer = await response.json(content_type=None)
        if response.status >= 300:
            raise RuntimeError(f"{method} {url}: {response.status} {answer}")
        return answer


@contextlib.asynccontextmanager
async def stack(workdir: Path) -> AsyncIterator[tuple[str, str, str]]:
    """A coordinator and an enrolled agent (host shells on); yields (url, token, server id)."""
    port = _free_port()
    url = f"http://{HOST}:{port}"
    coordinator_log = (workdir / "coordinator.log").open("wb")
    agent_log = (workdir / "agent.log").open("wb")
    processes: list[asyncio.subprocess.Process] = []
    try:
        processes.append(
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "coordinator", "serve", "--data-dir",
                str(workdir / "coordinator"), "--listen", f"{HOST}:{port}",
                "--log-level", "WARNING",
                # Rate limits off: the bench measures the work, not the limiter.
                "--rate-limit-token", "0", "--rate-limit-anonymous", "0",
                "--rate-limit-enroll", "0",
                stdout=coordinator_log,
                stderr=coordinator_log,
            )
        )  # fmt: skip
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url + "/openapi.json") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.05)
            admin = await _api(
                http,
                "POST",
                url + "/bootstrap/auth/first-admin",
                None,
                {"email": "bench@example.com", "displayName": "Bench"},
            )
            token = str(admin["apiToken"])
            server = await _api(http, "POST", url + "/servers", token, {"name": "bench"})
            env = {
                **os.environ,
                "BERTH_AGENT_ALLOW_HOST_SHELL": "1",
                "BERTH_AGENT_EDGE_ADMIN_URL": "http://127.0.0.1:9",
            }
            state = str(workdir / "agent")
            enroll = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agent", "enroll", "--coordinator", url, "--token",
                server["joinToken"], "--state-dir", state,
                env=env, stdout=agent_log, stderr=agent_log,
            )  # fmt: skip
            if await enroll.wait() != 0:
                raise RuntimeError("agent enrollment failed; see agent.log")
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "agent", "run", "--state-dir", state,
                    "--log-level", "WARNING",
                    env=env, stdout=agent_log, stderr=agent_log,
                )
            )  # fmt: skip
            for _ in range(400):
                shown = await _api(http, "GET", f"{url}/servers/{server['id']}", token)
                if shown["server"]["agent"]["status"] == "online":
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the agent did not come online; see agent.log")
        yield url, token, str(server["id"])
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        coordinator_log.close()
        agent_log.close()


async def relayed(url: str, token: str, server_id: str, keys: int, warmup: int) -> list[float]:
    """The product path: websocket client -> coordinator -> agent -> pty and back."""
    async with aiohttp.ClientSession() as http:
        item = await _api(
            http,
            "POST",
            url + "/terminal-sessions",
            token,
            {"scope": {"kind": "server", "serverId": server_id}, "command": _shell()},
        )
        transport = item["transport"]
        async with http.ws_connect(url + transport["path"], protocols=("berth.terminal.v1",)) as ws:
            await ws.send_json({"type": "auth", "ticket": transport["ticket"]})
            pending = bytearray()

            async def send(key: bytes) -> None:
                await ws.send_bytes(key)

            async def wait_for(echo: bytes) -> None:
                while not pending or echo not in pending:
                    frame = await ws.receive()
                    if frame.type == aiohttp.WSMsgType.BINARY:
                        pending.extend(frame.data)
                    elif frame.type != aiohttp.WSMsgType.TEXT:
                        raise RuntimeError(f"terminal closed: {frame.type}")
                del pending[: pending.index(echo) + len(echo) if echo else len(pending)]

            await _settle(send, wait_for)
            samples = await _measure(send, wait_for, keys, warmup)
            await _api(
                http, "POST", f"{url}/terminal-sessions/{item['sessionId']}/close", token, {}
            )
            return samples


def render(rows: dict[str, dict[str, float]], keys: int) -> str:
    """The results table."""
    lines = [
        f"keystroke echo round trip, {keys} keys after warm-up, sequential (ms)",
        f"{'path':<44} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}",
    ]
    for name, figures in rows.items():
        lines.append(
            f"{name:<44} {figures['p50']:>7.3f} {figures['p90']:>7.3f} "
            f"{figures['p99']:>7.3f} {figures['max']:>7.3f}"
        )
    base, relay = rows["direct local pty"], rows["client -> coordinator -> agent -> pty"]
    lines.append(
        f"ratio relayed/direct: p50 x{relay['p50'] / base['p50']:.1f}, "
        f"p99 x{relay['p99'] / base['p99']:.1f}; target p99 < 5 ms: "
        + ("met" if relay["p99"] < 5 else "NOT met")
    )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Measure both paths."""
    rows: dict[str, dict[str, float]] = {}
    _log("direct local pty")
    rows["direct local pty"] = percentiles(await direct_pty(args.keys, args.warmup))
    with tempfile.TemporaryDirectory(prefix="berth-bench-terminal-") as tmp:
        _log("starting a coordinator and an agent")
        async with stack(Path(tmp)) as (url, token, server_id):
            _log("relayed session")
            samples = await relayed(url, token, server_id, args.keys, args.warmup)
            rows["client -> coordinator -> agent -> pty"] = percentiles(samples)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1000, help="timed keys per path")
    parser.add_argument("--warmup", type=int, default=50, help="untimed keys first")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args))
    print(json.dumps(rows, indent=2) if args.json else render(rows, args.keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
