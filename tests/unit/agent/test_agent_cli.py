"""``berth-agent``'s command line: its commands, options, exit codes and what it refuses."""

from pathlib import Path

import pytest

from agent import cli
from agent.cli import EXIT_USAGE, main
from agent.identity import AgentKey
from agent.state import Enrollment, StateDir
from shared.version import EXIT_FATAL, PACKAGE_VERSION


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0)


def test_version_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"berth-agent {PACKAGE_VERSION}"
    assert _exit_code([]) == EXIT_USAGE
    assert "enroll" in capsys.readouterr().err
    assert _exit_code(["enroll", "--token", "t"]) == EXIT_USAGE  # no --coordinator
    assert "--coordinator" in capsys.readouterr().err
    assert _exit_code(["run", "--log-level", "chatty"]) == EXIT_USAGE


def test_enroll_passes_its_options_and_takes_the_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[tuple[str, str, Path, Path | None]] = []

    def fake_enroll(url: str, token: str, state: StateDir, ca: Path | None) -> Enrollment:
        seen.append((url, token, state.root, ca))
        return Enrollment(url, "srv_1", "web-1", "SHA256:x", None)

    monkeypatch.setattr(cli, "enroll", fake_enroll)
    monkeypatch.setenv("BERTH_JOIN_TOKEN", "from-env")
    argv = ["enroll", "--coordinator", "https://c.test", "--state-dir", str(tmp_path)]
    assert _exit_code(argv) == 0
    assert seen == [("https://c.test", "from-env", tmp_path, None)]
    assert "enrolled as server web-1 (srv_1)" in capsys.readouterr().out
    assert _exit_code([*argv, "--ca-file", str(tmp_path / "absent.pem")]) == EXIT_USAGE


def test_an_enrolled_host_is_not_enrolled_again_without_force(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    StateDir(tmp_path).save(
        Enrollment("https://c.test", "srv_1", "web-1", "SHA256:x", None), AgentKey.generate(), None
    )
    monkeypatch.delenv("BERTH_JOIN_TOKEN", raising=False)
    argv = ["enroll", "--coordinator", "https://c.test", "--token", "t"]
    assert _exit_code([*argv, "--state-dir", str(tmp_path)]) == EXIT_FATAL
    assert "already enrolled" in capsys.readouterr().err


def test_run_without_an_enrollment_is_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit_code(["run", "--state-dir", str(tmp_path / "none")]) == EXIT_FATAL
    assert "berth-agent enroll" in capsys.readouterr().err
