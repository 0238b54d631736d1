"""Entity id minting: a type prefix plus a time-ordered random suffix, so ids sort by creation."""

import secrets
import time


def new_id(prefix: str) -> str:
    """Return ``<prefix>_<12 hex of ms time><14 random hex>``; lexical order is creation order."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(7)}"
