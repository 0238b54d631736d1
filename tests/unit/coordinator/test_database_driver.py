"""A PostgreSQL URL without the ``postgres`` extra installed ends the coordinator with one line
saying what to install, not a ``ModuleNotFoundError`` traceback."""

import os
import subprocess
import sys
from pathlib import Path

from shared.version import EXIT_FATAL
from tests.harness import REPO_ROOT, scaled

# Runs the real entry point with asyncpg made unimportable, as on a host without the extra.
WITHOUT_ASYNCPG = (
    "import sys; sys.modules['asyncpg'] = None; from coordinator.cli import main; main()"
)


def test_postgres_url_without_its_driver_says_what_to_install(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BERTH_DATABASE_URL": "postgres://berth:secret@127.0.0.1:9/berth",
        "PYTHONPATH": str(REPO_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_ASYNCPG, "serve", "--data-dir", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert done.returncode == EXIT_FATAL, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "pip install 'berth[postgres]'" in lines[0], lines
    assert "secret" not in done.stderr  # the URL's password is not echoed
