"""Entity id minting: a type prefix plus a time-ordered random suffix, so ids sort by creation."""

import secrets
import threading
import time
from typing import Final

# Every minted id matches this and fits the 40-character id columns; the API checks ids in
# paths and confirmations against it (anything else names nothing).
ID_PATTERN: Final = r"^[A-Za-z0-9_-]+$"
ID_MAX_LENGTH: Final = 40
_SUFFIX_BITS = 56
_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, suffix) of the id minted last in this process


def new_id(prefix: str) -> str:
    """Return ``<prefix>_<12 hex of ms time><14 hex suffix>``; lexical order is creation order.

    Within one millisecond the suffix counts up from the previous id's (random otherwise):
    two ids minted in the same millisecond used to sort at random.
    """
    global _last  # one clock per process, like time itself
    now = int(time.time() * 1000)
    with _lock:
        last_ms, last_suffix = _last
        if now > last_ms:
            ms, suffix = now, secrets.randbits(_SUFFIX_BITS - 1)  # room to count up
        elif last_suffix + 1 < 1 << _SUFFIX_BITS:
            ms, suffix = last_ms, last_suffix + 1
        else:
            ms, suffix = last_ms + 1, secrets.randbits(_SUFFIX_BITS - 1)
        _last = (ms, suffix)
    return f"{prefix}_{ms:012x}{suffix:014x}"
