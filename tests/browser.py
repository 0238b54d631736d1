"""Headless Debian Chromium driven by Playwright (never a downloaded browser), for console tests
and bench/console.py; screenshots go to a .gitignored artifacts directory."""

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import pytest
from playwright.async_api import Browser, async_playwright

from coordinator.console import DIST

CHROMIUM: Final = os.environ.get("BERTH_CHROMIUM", "/usr/bin/chromium")
# --no-sandbox: CI runs as root; no GPU or /dev/shm on small machines and containers.
CHROMIUM_ARGS: Final = ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")
REQUIRE: Final = os.environ.get("BERTH_REQUIRE_DOCKER") == "1"
ARTIFACTS: Final = Path(__file__).resolve().parent.parent / "artifacts" / "console"


def require_console_parts() -> None:
    """Fail (under BERTH_REQUIRE_DOCKER=1) or skip when Chromium or the built console is missing."""
    missing = []
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    if not (DIST / "index.html").is_file():
        missing.append(f"the built console in {DIST} (npm ci && npm run build in console/)")
    if not missing:
        return
    message = "console browser tests need " + " and ".join(missing)
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium, closed afterwards."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


def artifacts_dir(test_name: str) -> Path:
    """A fresh directory for one test's screenshots under artifacts/console/."""
    directory = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory
