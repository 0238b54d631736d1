"""install-agent.sh's switch of caddy-api.service to Caddy 2.11.7, with pip and systemctl faked.

The step itself runs as written (the script's own function, in bash); only its paths are moved
under a temporary directory and the two commands that touch the system record what they were
asked. A real systemd is not available where the suite runs.
"""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "packaging" / "install-agent.sh"

FAKE_PIP = """#!/bin/sh
[ -e "$FAIL_PIP" ] && exit 1
while [ $# -gt 0 ]; do [ "$1" = --target ] && target=$2; shift; done
mkdir -p "$target/bin"
printf '#!/bin/sh\\necho v2.11.7\\n' > "$target/bin/caddy"
chmod +x "$target/bin/caddy"
"""
FAKE_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$CALLS"
case "$1" in
  is-active) exit 0 ;;
  show) echo "{ path=$CADDY_SEEN ; argv[]=x }" ;;
esac
"""


class Installer:
    """The script's functions with every system path under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls = root / "calls"
        self.fail_pip = root / "fail-pip"
        text = SCRIPT.read_text().rstrip()
        assert text.endswith('main "$@"')
        text = text.removesuffix('main "$@"')
        for system_path in ("/opt/berth", "/etc/systemd/system", "/run/systemd/system"):
            text = text.replace(system_path, f"{root}{system_path}")
        self.functions = root / "install-agent-functions.sh"
        self.functions.write_text(text)
        (root / "run" / "systemd" / "system").mkdir(parents=True)
        bin_dir = root / "bin"
        bin_dir.mkdir()
        venv_bin = root / "opt" / "berth" / "venv" / "bin"
        venv_bin.mkdir(parents=True)
        for path, body in ((venv_bin / "pip", FAKE_PIP), (bin_dir / "systemctl", FAKE_SYSTEMCTL)):
            path.write_text(body)
            path.chmod(0o755)
        self.caddy = root / "opt" / "berth" / "caddy-2.11.7" / "bin" / "caddy"
        self.dropin = (
            root / "etc" / "systemd" / "system" / "caddy-api.service.d" / "berth-caddy.conf"
        )
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "CALLS": str(self.calls),
            "FAIL_PIP": str(self.fail_pip),
            "CADDY_SEEN": str(self.caddy),
        }

    def ensure_edge_binary(self, *, debian_caddy: bool = False) -> tuple[list[str], str]:
        """Run the step; the systemctl calls it made and what it said."""
        self.calls.write_text("")
        flag = "1" if debian_caddy else "0"
        done = subprocess.run(
            ["bash", "-c", f'source "{self.functions}"; DEBIAN_CADDY={flag}; ensure_edge_binary'],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return self.calls.read_text().splitlines(), done.stdout


@pytest.fixture
def installer(tmp_path: Path) -> Installer:
    return Installer(tmp_path)


def test_caddy_api_is_switched_once_and_restarted_only_when_it_changes(
    installer: Installer,
) -> None:
    calls, said = installer.ensure_edge_binary()
    assert installer.caddy.is_file()
    assert installer.dropin.read_text() == (
        f"[Service]\nExecStart=\nExecStart={installer.caddy} run --environ --resume\n"
    )
    assert calls[0] == "daemon-reload"
    assert "restart caddy-api" in calls
    assert f"caddy-api.service runs {installer.caddy}" in said

    calls, said = installer.ensure_edge_binary()  # a re-run (an upgrade) with nothing to change
    assert calls == []
    assert said == ""


def test_debian_caddy_takes_the_drop_in_away(installer: Installer) -> None:
    installer.ensure_edge_binary()
    calls, _ = installer.ensure_edge_binary(debian_caddy=True)
    assert not installer.dropin.exists()
    assert calls[0] == "daemon-reload"
    assert "restart caddy-api" in calls


def test_without_pypi_the_distributions_caddy_stays(installer: Installer) -> None:
    installer.fail_pip.touch()
    calls, said = installer.ensure_edge_binary()
    assert calls == []
    assert not installer.dropin.exists()
    assert not installer.caddy.parent.parent.exists()
    assert "could not install Caddy 2.11.7" in said
