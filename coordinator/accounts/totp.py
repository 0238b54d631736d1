"""TOTP second factor (RFC 6238 via pyotp) and one-time recovery codes.

Codes are 6 digits over 30-second steps; one step either side is accepted for clock drift. A
code is accepted only for a step after the last accepted one, so a code seen on the wire (or
over a shoulder) cannot be replayed within its window. Recovery codes carry 80 random bits each
and are stored as SHA-256 digests: a fast hash is enough when there is nothing to brute-force.
"""

import hashlib
import re
import secrets
import time
from typing import Final

import pyotp

ISSUER: Final = "Berth"
DRIFT_STEPS: Final = 1
RECOVERY_CODE_COUNT: Final = 10
_CODE: Final = re.compile(r"^[0-9]{6}$")
_BASE32: Final = "abcdefghijklmnopqrstuvwxyz234567"


def new_secret() -> str:
    """A new base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (usually from a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def current_code(secret: str, at: float | None = None) -> str:
    """The code for ``at`` (now by default); for tests and the benchmark."""
    return pyotp.TOTP(secret).at(at if at is not None else time.time())


def accepted_step(
    secret: str, code: str, last_step: int | None, at: float | None = None
) -> int | None:
    """The time step ``code`` matches, if it is valid now and newer than ``last_step``."""
    code = code.strip().replace(" ", "")
    if not _CODE.match(code):
        return None
    totp = pyotp.TOTP(secret)
    now = at if at is not None else time.time()
    step = int(now // totp.interval)
    for candidate in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1):
        if last_step is not None and candidate <= last_step:
            continue
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def new_recovery_codes() -> list[str]:
    """Fresh one-time codes, shown once: ``xxxx-xxxx-xxxx-xxxx`` (80 bits each)."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_BASE32) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def recovery_code_hash(code: str) -> str:
    """The stored digest of a recovery code (case, spaces and dashes do not matter)."""
    normal = re.sub(r"[\s-]", "", code).lower()
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()
