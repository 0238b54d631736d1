"""Password hashing (argon2id) and the password policy: length, variety, a bundled breach list.

argon2id with argon2-cffi's default parameters, RFC 9106's "second recommended" (low-memory)
profile: time cost 3, 64 MiB of memory, parallelism 4. About 180 ms per hash on a 2-core test
machine (``bench/auth.py`` measures it), within the 100-300 ms a login may spend on it. Memory
hardness is what makes offline guessing on GPUs expensive; the PHC string keeps the parameters
and salt, so stored hashes verify after a parameter change and are upgraded at the next login.
Hashing runs in a worker thread, at most ``_CONCURRENT_HASHES`` at a time: 64 MiB each bounds
the memory a burst of logins can take, and the event loop keeps serving meanwhile.
"""

import asyncio
import threading
from functools import cache
from importlib import resources
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.errors import InvalidRequest

MIN_LENGTH: Final = 12
MAX_LENGTH: Final = 256  # long enough for any passphrase, short enough to bound hashing input
_MIN_DISTINCT: Final = 5
_CONCURRENT_HASHES: Final = 2

HASHER: Final = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (see above)
# A thread semaphore (taken in the worker thread): an asyncio one would bind to one event loop.
_slots = threading.BoundedSemaphore(_CONCURRENT_HASHES)


@cache
def _common() -> frozenset[str]:
    text = resources.files("coordinator").joinpath("assets/common-passwords.txt").read_text("utf-8")
    lines = (line.strip() for line in text.splitlines())
    return frozenset(line.casefold() for line in lines if line and not line.startswith("#"))


def weakness(password: str, email: str | None = None) -> str | None:
    """Why ``password`` is refused (None when it is acceptable). Never includes the password."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters long"
    if len(set(password)) < _MIN_DISTINCT:
        return f"must use at least {_MIN_DISTINCT} different characters"
    folded = password.casefold()
    if folded in _common():
        return "is on the list of breached or commonly guessed passwords"
    if email and folded in {email.casefold(), email.split("@", 1)[0].casefold()}:
        return "must not be the account's e-mail address"
    return None


def require_strong(password: str, email: str | None = None, field: str = "password") -> None:
    """Raise ``InvalidRequest`` (400) naming ``field`` when the policy refuses ``password``."""
    reason = weakness(password, email)
    if reason is not None:
        raise InvalidRequest(
            f"the password {reason}",
            details={"problems": [{"field": field, "message": reason}]},
        )


def _hash(password: str) -> str:
    with _slots:
        return HASHER.hash(password)


def _verify(stored: str, password: str) -> bool:
    with _slots:
        try:
            return HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False


async def hash_password(password: str) -> str:
    """The argon2id PHC string of ``password`` (computed off the event loop)."""
    return await asyncio.to_thread(_hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time inside argon2).

    With no stored hash (unknown e-mail, no password set) a filler hash is verified anyway, so
    the answer takes as long and timing does not tell which addresses have accounts.
    """
    matched = await asyncio.to_thread(_verify, stored or _filler(), password)
    return matched and stored is not None


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with other parameters than today's (upgrade at login)."""
    try:
        return HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


@cache
def _filler() -> str:
    return HASHER.hash("berth: no such account, constant-time filler")
