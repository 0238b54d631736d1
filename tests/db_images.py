"""The local database images of scripts/build-db-images.sh, built (or found cached) once per run."""

import functools
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_DOCKER

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _build(kinds: tuple[str, ...]) -> dict[str, str] | str:
    try:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "build-db-images.sh"), *kinds],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"build-db-images.sh did not run: {exc}"
    if done.returncode != 0:
        return f"build-db-images.sh failed: {done.stderr[-2000:]}"
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def db_images(*kinds: str) -> dict[str, str]:
    """``{kind: image tag}``; fails (never skips) without them when BERTH_REQUIRE_DOCKER=1."""
    found = _build(tuple(kinds))
    if isinstance(found, str):
        if REQUIRE_DOCKER:
            pytest.fail(found)
        pytest.skip(found)
    return found
