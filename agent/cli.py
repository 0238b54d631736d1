"""``berth-agent`` command line: enroll once, then run the daemon; distinct exit codes.

argparse (the standard library's) rather than click, which the other two commands use: the
agent's command line is two commands, and click would be about 2 MiB of the agent's resident
memory for as long as it runs (``bench/agent_cost.py``).
"""

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from agent.connection import FatalError, ReconnectPolicy
from agent.daemon import run as run_daemon
from agent.enroll import EnrollmentRefused, EnrollmentUnreachable, enroll
from agent.settings import AgentSettings, SettingsError
from agent.state import StateDir, StateError
from shared.version import EXIT_CRASH, EXIT_FATAL, EXIT_OK, PACKAGE_VERSION

# EX_TEMPFAIL: the coordinator could not be reached; running the command again may work.
EXIT_UNREACHABLE = 75
# EX_USAGE, as argparse exits on a bad command line.
EXIT_USAGE = 2
DEFAULT_STATE_DIR = Path("/var/lib/berth")


def _fail(message: str, code: int) -> NoReturn:
    print(f"berth-agent: {message}", file=sys.stderr)
    sys.exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="berth-agent",
        description="Berth agent: runs on each server and dials out to the coordinator.",
    )
    parser.add_argument("--version", action="version", version=f"berth-agent {PACKAGE_VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)
    enroll_ = commands.add_parser(
        "enroll",
        help="Generate this host's key and enroll it with a join token.",
        description="Generate this host's key and enroll it with a join token.",
    )
    enroll_.add_argument(
        "--coordinator", required=True, help="Coordinator URL, e.g. https://berth.example.com"
    )
    token = os.environ.get("BERTH_JOIN_TOKEN") or None
    enroll_.add_argument(
        "--token",
        default=token,
        required=token is None,
        help="One-time join token (default: $BERTH_JOIN_TOKEN).",
    )
    enroll_.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="%(default)s")
    enroll_.add_argument(
        "--ca-file", type=Path, help="CA bundle to verify an https coordinator with a private CA."
    )
    enroll_.add_argument(
        "--force", action="store_true", help="Re-enroll (new key) even if already enrolled."
    )
    run = commands.add_parser(
        "run",
        help="Run the agent daemon (exit 78 when refused: systemd must not restart it).",
        description="Run the agent daemon (exit 78 when refused: systemd must not restart it).",
    )
    run.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="%(default)s")
    run.add_argument(
        "--log-level",
        type=str.upper,
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        help="%(default)s",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Parse the command line and run the command; exits with its code."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.command == "enroll":
        ca_file: Path | None = arguments.ca_file
        if ca_file is not None and not ca_file.is_file():
            parser.exit(EXIT_USAGE, f"berth-agent enroll: --ca-file {ca_file} is not a file\n")
        enroll_command(
            arguments.coordinator, arguments.token, arguments.state_dir, ca_file, arguments.force
        )
        sys.exit(EXIT_OK)
    run_command(arguments.state_dir, arguments.log_level)


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
    except EnrollmentUnreachable as exc:
        _fail(str(exc), EXIT_UNREACHABLE)
    except OSError as exc:
        _fail(f"cannot write the state directory {state_dir}: {exc.strerror or exc}", EXIT_FATAL)
    print(
        f"enrolled as server {enrollment.server_name} ({enrollment.server_id}); "
        f"key {enrollment.key_fingerprint}; state in {state_dir}"
    )


def run_command(state_dir: Path, log_level: str) -> NoReturn:
    """Run the agent daemon (exit 78 when refused: systemd must not restart it)."""
    logging.basicConfig(
        level=log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        settings = AgentSettings.from_env()
    except SettingsError as exc:
        _fail(str(exc), EXIT_FATAL)
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
