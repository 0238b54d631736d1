"""Webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>``, checked within a replay window.

A receiver recomputes the HMAC of the timestamp header, a dot and the raw body with the
subscription's signing secret, compares it in constant time with the signature header, and
refuses timestamps outside the window so a captured request cannot be replayed later.
"""

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Final

SIGNATURE_HEADER: Final = "X-Berth-Signature"
TIMESTAMP_HEADER: Final = "X-Berth-Timestamp"
EVENT_HEADER: Final = "X-Berth-Event"
DELIVERY_HEADER: Final = "X-Berth-Delivery"
SCHEME: Final = "v1"
REPLAY_WINDOW_SECONDS: Final = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value: ``v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    signed = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The timestamp and signature headers for ``body`` sent now."""
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``valid``, else why not (``reason``)."""

    valid: bool
    reason: str | None
    age_seconds: int | None


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    header: str,
    *,
    now: float | None = None,
    tolerance_seconds: int = REPLAY_WINDOW_SECONDS,
) -> Verdict:
    """Check a received request; reasons: ``malformed-timestamp``, ``timestamp-outside-window``,
    ``signature-mismatch``."""
    if not timestamp.strip().isdigit():
        return Verdict(False, "malformed-timestamp", None)
    sent = int(timestamp.strip())
    age = int((time.time() if now is None else now) - sent)
    if abs(age) > tolerance_seconds:
        return Verdict(False, "timestamp-outside-window", age)
    # Several comma-separated signatures are accepted (the secret being rotated).
    expected = signature(secret, sent, body)
    for candidate in header.split(","):
        if hmac.compare_digest(expected, candidate.strip()):
            return Verdict(True, None, age)
    return Verdict(False, "signature-mismatch", age)
