"""``berth-agent`` command line: enroll once, then run the daemon; distinct exit codes."""

import asyncio
import logging
import sys
from pathlib import Path

import click

from agent.connection import FatalError, ReconnectPolicy
from agent.daemon import run as run_daemon
from agent.enroll import EnrollmentRefused, EnrollmentUnreachable, enroll
from agent.settings import AgentSettings, SettingsError
from agent.state import StateDir, StateError
from shared.version import EXIT_CRASH, EXIT_FATAL, EXIT_OK, PACKAGE_VERSION

# EX_TEMPFAIL: the coordinator could not be reached; running the command again may work.
EXIT_UNREACHABLE = 75


def _fail(message: str, code: int) -> None:
    click.echo(f"berth-agent: {message}", err=True)
    sys.exit(code)


@click.group()
@click.version_option(PACKAGE_VERSION, prog_name="berth-agent")
def main() -> None:
    """Berth agent: runs on each server and dials out to the coordinator."""


@main.command(name="enroll")
@click.option(
    "--coordinator", required=True, help="Coordinator URL, e.g. https://berth.example.com"
)
@click.option("--token", required=True, envvar="BERTH_JOIN_TOKEN", help="One-time join token.")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=Path("/var/lib/berth"),
    show_default=True,
)
@click.option(
    "--ca-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="CA bundle to verify an https coordinator with a private CA.",
)
@click.option("--force", is_flag=True, help="Re-enroll (new key) even if already enrolled.")
def enroll_command(
    coordinator: str, token: str, state_dir: Path, ca_file: Path | None, force: bool
) -> None:
    """Generate this host's key and enroll it with a join token."""
    state = StateDir(state_dir)
    if state.is_enrolled() and not force:
        _fail(
            f"already enrolled ({state_dir / 'state.json'}); pass --force to re-enroll", EXIT_FATAL
        )
    try:
        enrollment = enroll(coordinator, token, state, ca_file)
    except EnrollmentRefused as exc:
        _fail(str(exc), EXIT_FATAL)
        return
    except EnrollmentUnreachable as exc:
        _fail(str(exc), EXIT_UNREACHABLE)
        return
    except OSError as exc:
        _fail(f"cannot write the state directory {state_dir}: {exc.strerror or exc}", EXIT_FATAL)
        return
    click.echo(
        f"enrolled as server {enrollment.server_name} ({enrollment.server_id}); "
        f"key {enrollment.key_fingerprint}; state in {state_dir}"
    )


@main.command(name="run")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=Path("/var/lib/berth"),
    show_default=True,
)
@click.option("--log-level", default="INFO", show_default=True)
def run_command(state_dir: Path, log_level: str) -> None:
    """Run the agent daemon (exit 78 when refused: systemd must not restart it)."""
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        settings = AgentSettings.from_env()
    except SettingsError as exc:
        _fail(str(exc), EXIT_FATAL)
        return
    policy = ReconnectPolicy(
        base_seconds=settings.reconnect_base_seconds, cap_seconds=settings.reconnect_max_seconds
    )
    try:
        asyncio.run(run_daemon(state_dir, policy, settings))
    except StateError as exc:
        _fail(str(exc), EXIT_FATAL)
    except FatalError as exc:
        _fail(str(exc), EXIT_FATAL)
    except KeyboardInterrupt:
        sys.exit(EXIT_OK)
    except Exception as exc:
        logging.getLogger(__name__).exception("agent crashed")
        _fail(f"crashed: {exc}", EXIT_CRASH)
    sys.exit(EXIT_OK)
