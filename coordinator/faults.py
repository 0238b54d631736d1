"""Test-only crash points: the coordinator SIGKILLs itself at a named point when a test asks.

Crash-recovery tests start a coordinator process with ``BERTH_TEST_FAULTS=1`` and
``BERTH_TEST_CRASH_AT=<point>``; without the first variable the second is ignored, so a stray
setting in production cannot take the coordinator down.
"""

import logging
import os
import signal

logger = logging.getLogger(__name__)


def crash_point(name: str) -> None:
    """Die here, as abruptly as a power cut, if the test-only fault injection names this point."""
    if os.environ.get("BERTH_TEST_FAULTS") != "1":
        return
    if os.environ.get("BERTH_TEST_CRASH_AT") != name:
        return
    logger.warning("test fault injection: killing the coordinator at %s", name)
    os.kill(os.getpid(), signal.SIGKILL)
