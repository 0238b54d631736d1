"""``berth login --email``, ``berth account`` and ``berth logout`` against a real coordinator."""

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner, Result

from coordinator.accounts import totp
from coordinator.client.cli import main
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.test_accounts_api import EMAIL, PASSWORD

TWO_FACTOR = "/account/two-factor"


async def _berth(coordinator: Coordinator, home: Path, *args: str, input: str = "") -> Result:
    """Run ``berth`` with only the saved login (no token in the environment)."""
    env = {"XDG_CONFIG_HOME": str(home), "BERTH_URL": None, "BERTH_TOKEN": None, "COLUMNS": "200"}
    return await asyncio.to_thread(
        CliRunner().invoke, main, list(args), env=env, input=input, catch_exceptions=False
    )


def _saved_token(home: Path) -> str:
    saved = json.loads((home / "berth" / "config.json").read_text(encoding="utf-8"))
    return str(saved["token"])


async def test_password_login_with_a_second_factor_sessions_and_logout(
    coordinator: Coordinator, admin_token: str, tmp_path: Path
) -> None:
    status, body, _ = await coordinator.call(
        "POST", "/account/password", token=admin_token, json={"newPassword": PASSWORD}
    )
    assert status == 200, body
    home = tmp_path / "config"
    url = coordinator.url
    wrong = await _berth(
        coordinator, home, "login", "--url", url, "--email", EMAIL, "--password-stdin",
        input="not-the-password\n",
    )  # fmt: skip
    assert wrong.exit_code == 1
    assert "password is wrong" in wrong.output
    assert not (home / "berth" / "config.json").exists()

    _, enrolment, _ = await coordinator.call("POST", f"{TWO_FACTOR}/enable", token=admin_token)
    secret = enrolment["secret"]
    confirm_code = totp.current_code(secret)
    status, enabled, _ = await coordinator.call(
        "POST", f"{TWO_FACTOR}/confirm", token=admin_token, json={"code": confirm_code}
    )
    assert status == 200, enabled

    async def next_step() -> bool:
        return totp.current_code(secret) != confirm_code

    await eventually(next_step, timeout=40, what="the next TOTP step")
    result = await _berth(
        coordinator, home, "login", "--url", url, "--email", EMAIL, "--password-stdin",
        input=f"{PASSWORD}\n{totp.current_code(secret)}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    token = _saved_token(home)
    assert token.startswith("berth_ss_")

    listed = await _berth(coordinator, home, "--json", "account", "sessions")
    assert listed.exit_code == 0, listed.output
    items = json.loads(listed.stdout)["items"]
    assert [i["clientKind"] for i in items] == ["cli"]
    assert items[0]["current"] is True
    shown = await _berth(coordinator, home, "account", "show")
    assert EMAIL in shown.stdout

    disabled = await _berth(
        coordinator, home, "account", "2fa", "disable", input=f"{enabled['recoveryCodes'][0]}\n"
    )
    assert disabled.exit_code == 0, disabled.output
    assert "off" in disabled.stdout

    out = await _berth(coordinator, home, "logout")
    assert out.exit_code == 0, out.output
    assert _saved_token(home) == ""
    status, _, _ = await coordinator.call("GET", "/account/profile", token=token)
    assert status == 401
