"""A coordinator in its own process (``coordinator serve``): one a test can SIGKILL and restart.

The in-process ``Coordinator`` can only stop cleanly; crash-recovery tests need a process that
dies mid-write, so this one runs ``python -m coordinator serve`` on the same data dir and port
each time, with SQLite under the data dir. The HTTP helpers are the harness's own.
"""

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import aiohttp

from tests.harness import REPO_ROOT, Coordinator, scaled

_LISTENING = re.compile(r"berth-coordinator listening on (http://127\.0\.0\.1:(\d+))")


class CoordinatorProcess(Coordinator):
    """``coordinator serve`` as a subprocess; ``env`` applies to the next start only."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, None)
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, env: dict[str, str] | None = None) -> None:
        """Start serving and wait until it listens (the port is pinned after the first start)."""
        self._data_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        variables = {k: v for k, v in os.environ.items() if k != "BERTH_DATABASE_URL"}
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "coordinator",
                "serve",
                "--data-dir",
                str(self._data_dir),
                "--listen",
                f"127.0.0.1:{self._port}",
                "--log-level",
                "DEBUG",
                cwd=REPO_ROOT,
                env={**variables, **(env or {})},
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + scaled(30)
        while True:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            if found := _LISTENING.search(text):
                self.url, self._port = found.group(1), int(found.group(2))
                break
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"the coordinator did not start:\n{text}")
            await asyncio.sleep(0.05)  # poll interval; the deadline above bounds it
        if self.http is None:
            self.http = aiohttp.ClientSession()

    async def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for the process to end (a crash point makes it kill itself); its return code."""
        assert self.process is not None
        async with asyncio.timeout(scaled(timeout)):
            return await self.process.wait()

    async def stop(self) -> None:
        """Terminate (SIGTERM) and wait; kill if it lingers."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            async with asyncio.timeout(scaled(15)):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def log(self) -> str:
        """Everything every start of this coordinator logged."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
