"""Agent state directory: atomic writes, key permissions, readable errors."""

from pathlib import Path

import pytest

from agent.identity import AgentKey
from agent.state import Enrollment, StateDir, StateError

ENROLLMENT = Enrollment(
    coordinator_url="https://c.example",
    server_id="srv_1",
    server_name="web-1",
    key_fingerprint="SHA256:x",
    ca_file=None,
)


def test_save_then_load(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    key = AgentKey.generate()
    state.save(ENROLLMENT, key, ca_pem=b"-----BEGIN CERTIFICATE-----\n")
    assert state.is_enrolled()
    loaded, loaded_key = state.load()
    assert loaded.server_id == "srv_1"
    assert loaded.ca_file == str(tmp_path / "state" / "ca.pem")
    assert loaded_key.public_text() == key.public_text()
    assert (tmp_path / "state" / "agent.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert not list((tmp_path / "state").glob(".*.tmp"))


def test_missing_state_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="berth-agent enroll"):
        StateDir(tmp_path).load()


def test_world_readable_key_is_refused(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.save(ENROLLMENT, AgentKey.generate(), ca_pem=None)
    (tmp_path / "agent.key").chmod(0o644)
    with pytest.raises(StateError, match="chmod 600"):
        state.load()


def test_corrupt_state_is_a_readable_error(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.save(ENROLLMENT, AgentKey.generate(), ca_pem=None)
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(StateError, match="cannot read"):
        state.load()
