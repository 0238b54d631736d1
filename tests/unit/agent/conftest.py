"""The fake engine fixture for the runtime's tests (tests/unit/agent/fake_engine.py)."""

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.runtime.docker import DockerRuntime
from tests.unit.agent.fake_engine import FakeEngine, serve


@pytest.fixture
async def engine(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeEngine]:
    # Unix socket paths are limited to 108 bytes: pytest's tmp_path can be longer.
    directory = tempfile.mkdtemp(prefix="berth-ops-", dir="/tmp")
    server, thread = serve(os.path.join(directory, "docker.sock"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{server.server_address}")
    # No client configuration: nothing the SDK alone would apply.
    monkeypatch.setenv("DOCKER_CONFIG", os.path.join(directory, "no-config"))
    monkeypatch.setenv("HOME", directory)
    # The runtimes a test makes hold the engine client's connections: closed at its end.
    made: list[DockerRuntime] = []
    original = DockerRuntime.__init__

    def tracked(self: DockerRuntime, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(DockerRuntime, "__init__", tracked)
    yield server
    for runtime in made:
        await runtime.close()
    server.shutdown()
    server.server_close()
    thread.join()
    shutil.rmtree(directory, ignore_errors=True)
