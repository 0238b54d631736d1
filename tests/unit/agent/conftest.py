"""The fake engine fixture for the runtime's tests (tests/unit/agent/fake_engine.py)."""

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.unit.agent.fake_engine import FakeEngine, serve


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEngine]:
    # Unix socket paths are limited to 108 bytes: pytest's tmp_path can be longer.
    directory = tempfile.mkdtemp(prefix="berth-ops-", dir="/tmp")
    server, thread = serve(os.path.join(directory, "docker.sock"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{server.server_address}")
    # No client configuration: nothing the SDK alone would apply.
    monkeypatch.setenv("DOCKER_CONFIG", os.path.join(directory, "no-config"))
    monkeypatch.setenv("HOME", directory)
    yield server
    server.shutdown()
    server.server_close()
    thread.join()
    shutil.rmtree(directory, ignore_errors=True)
