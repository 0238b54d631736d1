"""The ``berth`` CLI end to end, against a real coordinator running as a subprocess."""

import asyncio
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner, Result

from coordinator.client.cli import PERMISSIONS, main
from coordinator.client.http import ApiClient, JsonObject, text
from coordinator.permissions import Permission
from tests.harness import REPO_ROOT, scaled

LISTENING = re.compile(r"berth-coordinator listening on (http://127\.0\.0\.1:\d+)")


def _wait_for_url(process: subprocess.Popen[bytes], log: Path) -> str:
    """Poll the coordinator's log until it says where it listens."""
    deadline = time.monotonic() + scaled(30)
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if found := LISTENING.search(text):
            return found.group(1)
        if process.poll() is not None:
            pytest.fail(f"coordinator exited with {process.returncode}:\n{text}")
        time.sleep(0.05)  # poll interval; the deadline above bounds it
    pytest.fail(f"coordinator did not start within {scaled(30):.0f} s:\n{log.read_text()}")


def _bootstrap(url: str) -> str:
    """Create the first admin (an unauthenticated route) and return its API token."""

    async def first_admin() -> JsonObject:
        async with ApiClient(url, token="") as api:
            return await api.post(
                "/bootstrap/auth/first-admin",
                {"email": "admin@example.com", "displayName": "Admin"},
            )

    return text(asyncio.run(first_admin()), "apiToken")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A coordinator subprocess with SQLite in a temp dir; yields its URL and the admin token."""
    data = tmp_path_factory.mktemp("coordinator")
    env = {k: v for k, v in os.environ.items() if k != "BERTH_DATABASE_URL"}
    command = [sys.executable, "-m", "coordinator", "serve", "--data-dir", str(data / "state"),
               "--listen", "127.0.0.1:0"]  # fmt: skip
    log_path = data / "coordinator.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            url = _wait_for_url(process, log_path)
            yield url, _bootstrap(url)
        finally:
            process.terminate()
            try:
                process.wait(timeout=scaled(15))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class Berth:
    """Runs the CLI in-process with its configuration isolated in a temp dir."""

    url: str
    token: str
    config_home: Path

    def __call__(
        self, *args: str, token: str | None = None, input: str | None = None, env: bool = True
    ) -> Result:
        """Invoke ``berth ARGS``; URL and token come from the environment unless ``env=False``."""
        variables = {
            "XDG_CONFIG_HOME": str(self.config_home),
            "BERTH_URL": self.url if env else None,
            "BERTH_TOKEN": (token or self.token) if env else None,
        }
        return CliRunner().invoke(main, list(args), env=variables, input=input,
                                  catch_exceptions=False)  # fmt: skip

    def json(self, *args: str, token: str | None = None) -> dict[str, object]:
        """Invoke ``berth --json ARGS``, expect success, and parse stdout."""
        result = self("--json", *args, token=token)
        assert result.exit_code == 0, result.output
        parsed: dict[str, object] = json.loads(result.stdout)
        return parsed


@pytest.fixture
def berth(live: tuple[str, str], tmp_path: Path) -> Berth:
    """The CLI, pointed at the live coordinator as its admin."""
    return Berth(url=live[0], token=live[1], config_home=tmp_path / "config")


def _ok(result: Result) -> str:
    """Assert a zero exit and return stdout."""
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result.stdout


def _server_id(berth: Berth, name: str) -> str:
    """Look a server's id up by name through the CLI's JSON output."""
    shown = berth.json("servers", "show", name)["server"]
    assert isinstance(shown, dict)
    server_id: str = shown["id"]
    return server_id


def test_login_saves_a_private_config_that_later_commands_use(berth: Berth) -> None:
    out = _ok(berth("login", "--url", berth.url + "/", "--token", berth.token, env=False))
    path = berth.config_home / "berth" / "config.json"
    assert str(path) in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"url": berth.url, "token": berth.token}
    assert not list(path.parent.glob(".config-*"))  # no temp file left behind

    _ok(berth("servers", "add", "from-login", env=False))
    assert "from-login" in _ok(berth("servers", "list", env=False))


def test_login_with_a_wrong_token_fails_and_saves_nothing(berth: Berth) -> None:
    result = berth("login", "--url", berth.url, "--token", "berth_at_wrong", env=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("berth: ")
    assert "(unauthorized, request req_" in result.stderr
    assert not (berth.config_home / "berth" / "config.json").exists()


def test_flags_beat_the_environment(berth: Berth) -> None:
    result = berth("--token", berth.token, "servers", "list", token="berth_at_wrong")
    _ok(result)
    result = berth("--url", berth.url, "servers", "list", token="berth_at_wrong")
    assert result.exit_code == 1


def test_server_lifecycle_by_name(berth: Berth) -> None:
    out = _ok(berth("servers", "add", "web-1", "--host", "10.0.0.5", "--ttl", "600"))
    assert re.search(r"Registered server web-1 \(srv_\w+\)", out)
    assert re.search(r"berth_jt_\S+", out)
    assert f"/agent/v1/install.sh | sudo bash -s -- --coordinator {berth.url}" in out
    assert f"berth-agent enroll --coordinator {berth.url} --token berth_jt_" in out

    listing = _ok(berth("servers", "list"))
    assert re.search(r"web-1\s+10\.0\.0\.5\s+active\s+never-connected", listing)
    shown = _ok(berth("servers", "show", "web-1"))
    assert "never-connected" in shown
    assert "10.0.0.5" in shown
    assert re.search(r"Created\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((just now|\d+s ago)\)", shown)
    server_id = _server_id(berth, "web-1")
    assert server_id in _ok(berth("servers", "show", server_id))

    assert "web-1 cannot be deleted yet" in _ok(berth("servers", "delete-check", "web-1"))
    _ok(berth("servers", "rename", "web-1", "web-2"))
    assert _server_id(berth, "web-2") == server_id
    _ok(berth("servers", "deactivate", "web-2", "--reason", "retired"))
    shown = _ok(berth("servers", "show", "web-2"))
    assert "inactive" in shown
    assert "retired" in shown
    assert "web-2 can be deleted." in _ok(berth("servers", "delete-check", "web-2"))

    declined = berth("servers", "delete", "web-2", input="n\n")
    assert declined.exit_code == 1
    assert _server_id(berth, "web-2") == server_id
    assert server_id in _ok(berth("servers", "delete", "web-2", input="y\n"))
    gone = berth("servers", "show", server_id)
    assert gone.exit_code == 1
    assert "(not_found, request req_" in gone.stderr


def test_join_token_and_key_rotation(berth: Berth) -> None:
    first = re.findall(r"berth_jt_\S+", _ok(berth("servers", "add", "keys-1")))
    again = re.findall(r"berth_jt_\S+", _ok(berth("servers", "join-token", "keys-1")))
    rotated = _ok(berth("servers", "rotate-key", "keys-1", "--yes"))
    assert "Revoked the agent key of keys-1" in rotated
    assert len({first[0], again[0], re.findall(r"berth_jt_\S+", rotated)[0]}) == 3


def test_connectivity_test_of_an_unconnected_server_exits_1(berth: Berth) -> None:
    _ok(berth("servers", "add", "lonely"))
    result = berth("servers", "test", "lonely")
    assert result.exit_code == 1
    assert re.search(r"agent-link\s+failed", result.stdout)
    assert "unreachable" in result.stdout


def test_tokens_create_list_use_and_revoke(berth: Berth) -> None:
    _ok(berth("servers", "add", "scoped-1"))
    _ok(berth("servers", "add", "scoped-2"))
    created = berth("tokens", "create", "ci", "--permission", "servers:read",
                    "--server", "scoped-1", "--expires-at", "2099-01-01T00:00:00Z")  # fmt: skip
    out = _ok(created)
    token = re.findall(r"berth_at_\S+", out)[0]
    token_id = re.findall(r"tok_\w+", out)[0]
    assert "will not be shown again" in created.stderr

    listing = _ok(berth("tokens", "list"))
    assert re.search(rf"{token_id}\s+ci\s+active\s+{token[-4:]}\s+servers:read", listing)
    assert "2099-01-01" in _ok(berth("tokens", "show", token_id))

    visible = _ok(berth("servers", "list", token=token))  # the scope limits what it sees
    assert "scoped-1" in visible
    assert "scoped-2" not in visible
    denied = berth("servers", "add", "nope", token=token)
    assert denied.exit_code == 1
    assert "(forbidden, request req_" in denied.stderr

    assert token_id in _ok(berth("tokens", "revoke", token_id, "--yes"))
    assert re.search(rf"{token_id}\s+ci\s+revoked", _ok(berth("tokens", "list")))
    refused = berth("servers", "list", token=token)
    assert refused.exit_code == 1
    assert "unauthorized" in refused.stderr


def test_json_output_is_the_api_answer(berth: Berth) -> None:
    _ok(berth("servers", "add", "json-1"))
    shown = berth.json("servers", "show", "json-1")
    assert shown["schemaVersion"] == "servers.show/v1"
    server = shown["server"]
    assert isinstance(server, dict)
    assert server["name"] == "json-1"
    assert server["agent"]["status"] == "never-connected"
    listing = berth.json("servers", "list")
    assert listing["nextCursor"] is None
    assert isinstance(listing["items"], list)
    assert "json-1" in {item["name"] for item in listing["items"]}
    # The flag may follow the command as well as precede it.
    after = berth("servers", "list", "--json")
    assert after.exit_code == 0, after.output
    assert {i["name"] for i in json.loads(after.stdout)["items"]} == {
        i["name"] for i in listing["items"]
    }
    shown_after = berth("servers", "show", "json-1", "--json")
    assert shown_after.exit_code == 0, shown_after.output
    assert json.loads(shown_after.stdout)["server"]["id"] == server["id"]
    events = berth.json("audit", "list", "--aggregate", server["id"])
    assert isinstance(events["items"], list)
    assert [e["eventType"] for e in events["items"]] == ["server.registered"]


def test_audit_list_shows_changes(berth: Berth) -> None:
    _ok(berth("servers", "add", "audited"))
    server_id = _server_id(berth, "audited")
    _ok(berth("servers", "rename", server_id, "audited-2"))
    out = _ok(berth("audit", "list", "--aggregate", server_id))
    assert "server.registered" in out
    assert "server.renamed" in out


def test_errors_are_one_line_with_exit_1(berth: Berth) -> None:
    wrong = berth("servers", "list", token="berth_at_wrong")
    assert wrong.exit_code == 1
    assert re.fullmatch(r"berth: .+ \(unauthorized, request req_\w+\)\n", wrong.stderr)

    unknown = berth("servers", "show", "no-such-server")
    assert unknown.exit_code == 1
    assert unknown.stderr == "berth: no server named 'no-such-server' (see 'berth servers list')\n"

    invalid = berth("servers", "add", "bad name!")
    assert invalid.exit_code == 1
    assert "name:" in invalid.stderr
    assert "(invalid_request, request req_" in invalid.stderr

    unconfigured = berth("servers", "list", env=False)
    assert unconfigured.exit_code == 1
    assert "berth login" in unconfigured.stderr

    with socket.socket() as probe:  # a port nothing listens on once the socket closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = berth("--url", f"http://127.0.0.1:{port}", "servers", "list")
    assert down.exit_code == 1
    assert down.stderr.startswith(f"berth: cannot reach the coordinator at http://127.0.0.1:{port}")


def test_usage_errors_exit_2(berth: Berth) -> None:
    assert berth("tokens", "create", "x", "--permission", "bogus").exit_code == 2
    assert berth("tokens", "create", "x").exit_code == 2
    assert (
        berth("tokens", "create", "x", "--permission", "*", "--expires-at", "soon").exit_code == 2
    )
    assert berth("servers", "add", "x", "--ttl", "5").exit_code == 2


def test_permission_choices_match_the_api() -> None:
    assert get_args(Permission) == PERMISSIONS
