"""Test harness: an in-process coordinator on 127.0.0.1 port 0, agent subprocesses, polling."""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from coordinator.appkeys import REGISTRY_KEY, ROSTER_KEY
from coordinator.hub.registry import Registry
from coordinator.server import running
from coordinator.server_roster import ServerRoster
from coordinator.settings import Settings

# Re-exported: most tests take their polling from here.
from tests.polling import (
    TIMEOUT_FACTOR as TIMEOUT_FACTOR,
    eventually as eventually,
    scaled as scaled,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


class Coordinator:
    """A real coordinator application served in-process; can be stopped and restarted."""

    def __init__(
        self, data_dir: Path, database_url: str | None, *, port: int = 0, **overrides: Any
    ) -> None:
        self._data_dir = data_dir
        self._database_url = database_url
        self._overrides = overrides
        self._port = port
        self._cm: AbstractAsyncContextManager[tuple[web.AppRunner, str]] | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.http: aiohttp.ClientSession | None = None

    def settings(self) -> Settings:
        """The settings the next start uses (the port is pinned after the first start)."""
        return Settings.model_validate(
            {
                "data_dir": self._data_dir,
                "host": "127.0.0.1",
                "port": self._port,
                "database_url": self._database_url,
                **self._overrides,
            }
        )

    async def start(self) -> None:
        """Start serving; after a restart the same port is reused so agents can reconnect."""
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._cm = running(self.settings())
        self._runner, self.url = await self._cm.__aenter__()
        self._port = int(self.url.rsplit(":", 1)[1])
        if self.http is None:
            self.http = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Stop serving (closes agent links with 1001, as on SIGTERM)."""
        if self._cm is not None:
            cm, self._cm = self._cm, None
            await cm.__aexit__(None, None, None)

    async def restart(self) -> None:
        """Stop and start again on the same port and database."""
        await self.stop()
        await self.start()

    async def close(self) -> None:
        """Stop and release the HTTP client."""
        await self.stop()
        if self.http is not None:
            await self.http.close()
            self.http = None

    @property
    def registry(self) -> Registry:
        """The live agent registry of the running app."""
        assert self._runner is not None
        return self._runner.app[REGISTRY_KEY]

    @property
    def app(self) -> web.Application:
        """The running aiohttp application (its capabilities' app keys)."""
        assert self._runner is not None
        return self._runner.app

    @property
    def roster(self) -> ServerRoster:
        """The running app's cache of organizations' server ids."""
        assert self._runner is not None
        return self._runner.app[ROSTER_KEY]

    @property
    def port(self) -> int:
        """The bound port."""
        return self._port

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        data: str | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """Call the API; returns (status, parsed JSON or text, headers)."""
        assert self.http is not None
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        async with self.http.request(
            method, self.url + path, json=json, data=data, headers=sent
        ) as response:
            text = await response.text()
            try:
                body: Any = await response.json(content_type=None) if text else None
            except ValueError:
                body = text
            return response.status, body, dict(response.headers)

    async def bootstrap(self) -> str:
        """Create the first admin; return its API token."""
        status, body, _ = await self.call(
            "POST",
            "/bootstrap/auth/first-admin",
            json={"email": "admin@example.com", "displayName": "Admin"},
        )
        assert status == 201, body
        return str(body["apiToken"])

    async def add_server(self, token: str, name: str, **extra: Any) -> dict[str, Any]:
        """Register a server; return the creation answer (id, joinToken, installCommand...)."""
        status, body, _ = await self.call(
            "POST", "/servers", token=token, json={"name": name, **extra}
        )
        assert status == 201, body
        return dict(body)

    async def agent_status(self, token: str, server_id: str) -> str:
        """Return ``server.agent.status`` from the API."""
        status, body, _ = await self.call("GET", f"/servers/{server_id}", token=token)
        assert status == 200, body
        return str(body["server"]["agent"]["status"])


# Containers a test creates carry berth.test=<this session>; the test image itself is labelled
# berth.test=1, so cleanup must match the value, not just the key.
TEST_LABEL = "berth.test"
TEST_SESSION = f"session-{os.getpid()}-{uuid.uuid4().hex[:8]}"
# Agents under test never touch a Caddy they were not given (port 9 is discard: closed).
UNUSED_EDGE_ADMIN_URL = "http://127.0.0.1:9"


class AgentProcess:
    """A real ``berth-agent`` subprocess with its own state directory and log file."""

    def __init__(
        self, state_dir: Path, env: dict[str, str] | None = None, *, prefix: tuple[str, ...] = ()
    ) -> None:
        self.state_dir = state_dir
        # Run through e.g. ("ip", "netns", "exec", NAME) to put the agent in a network namespace.
        self.prefix = prefix
        self.log_path = state_dir.parent / f"{state_dir.name}.log"
        self.env = {
            **os.environ,
            "BERTH_AGENT_RECONNECT_BASE_SECONDS": "0.05",
            "BERTH_AGENT_RECONNECT_MAX_SECONDS": "0.5",
            "BERTH_AGENT_EDGE_ADMIN_URL": UNUSED_EDGE_ADMIN_URL,
            "BERTH_AGENT_EXTRA_LABELS": f"{TEST_LABEL}={TEST_SESSION}",
            **(env or {}),
        }
        self.process: asyncio.subprocess.Process | None = None

    async def enroll(self, coordinator_url: str, token: str, *extra: str) -> tuple[int, str]:
        """Run ``berth-agent enroll``; return (exit code, stderr+stdout)."""
        # A plain subprocess in a thread: an asyncio subprocess transport collected after the
        # loop moved on left its pipe unclosed (a ResourceWarning failing a later test).
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "agent",
                "enroll",
                "--coordinator",
                coordinator_url,
                "--token",
                token,
                "--state-dir",
                str(self.state_dir),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            timeout=scaled(60),
            check=False,
        )
        return done.returncode, done.stdout.decode()

    async def start(self) -> None:
        """Start ``berth-agent run`` in the background, logging to ``log_path``."""
        log = self.log_path.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.prefix,
                sys.executable,
                "-m",
                "agent",
                "run",
                "--state-dir",
                str(self.state_dir),
                "--log-level",
                "DEBUG",
                stdout=log,
                stderr=log,
                env=self.env,
            )
        finally:
            log.close()

    async def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit; return its exit code."""
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
        """Return what the agent logged so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""


@asynccontextmanager
async def serving(
    data_dir: Path, database_url: str, **overrides: Any
) -> AsyncIterator[Coordinator]:
    """A started :class:`Coordinator` (settings ``overrides``), closed on the way out."""
    harness = Coordinator(data_dir, database_url, **overrides)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()
