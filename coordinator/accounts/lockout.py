"""Login backoff: after repeated failed logins an account, and separately a client address, is
locked for a time that doubles with each further failure.

Per account, so one account cannot be guessed at from many addresses; per address, so one
client cannot try a few passwords on each of many accounts. A success clears the account's
count (not the address's: one valid account must not reset a guessing address). Failures older
than ``window`` are forgotten. State is in memory (one coordinator process serves the API), in
an LRU of bounded size; a restart forgets it, which only an operator can cause.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

ACCOUNT_FREE_FAILURES: Final = 5
ADDRESS_FREE_FAILURES: Final = 20
BASE_LOCK_SECONDS: Final = 30.0
MAX_LOCK_SECONDS: Final = 15 * 60.0
WINDOW_SECONDS: Final = 15 * 60.0
MAX_KEYS: Final = 50_000


@dataclass(slots=True)
class _Record:
    failures: int
    last_failure: float
    locked_until: float


class Backoff:
    """Failure counts and lock times for one kind of key (accounts or addresses)."""

    def __init__(
        self,
        free_failures: int,
        *,
        base_seconds: float = BASE_LOCK_SECONDS,
        max_seconds: float = MAX_LOCK_SECONDS,
        window_seconds: float = WINDOW_SECONDS,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` may try again (0: it may now)."""
        record = self._records.get(key)
        if record is None:
            return 0
        left = record.locked_until - self.clock()
        return math.ceil(left) if left > 0 else 0

    def fail(self, key: str) -> int:
        """Count a failure; return the lock it earned in whole seconds (0: none yet)."""
        now = self.clock()
        record = self._records.pop(key, None)
        if record is None or now - record.last_failure > self.window_seconds:
            record = _Record(0, now, 0.0)
        record.failures += 1
        record.last_failure = now
        beyond = record.failures - self.free_failures
        lock = 0.0
        if beyond >= 0:
            lock = min(self.max_seconds, self.base_seconds * 2.0 ** min(beyond, 30))
            record.locked_until = now + lock
        self._records[key] = record
        while len(self._records) > self.max_keys:
            self._records.popitem(last=False)
        return math.ceil(lock)

    def clear(self, key: str) -> None:
        """Forget ``key``'s failures (a successful login)."""
        self._records.pop(key, None)

    def failures(self, key: str) -> int:
        """Failures counted for ``key`` within the window."""
        record = self._records.get(key)
        if record is None or self.clock() - record.last_failure > self.window_seconds:
            return 0
        return record.failures


class LoginThrottle:
    """The two backoffs a login consults: per account (e-mail) and per client address."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.accounts = Backoff(ACCOUNT_FREE_FAILURES, clock=clock)
        self.addresses = Backoff(ADDRESS_FREE_FAILURES, clock=clock)

    def retry_after(self, account: str, address: str) -> int:
        """Seconds until a login for ``account`` from ``address`` may be tried (0: now)."""
        return max(self.accounts.retry_after(account), self.addresses.retry_after(address))

    def failed(self, account: str, address: str) -> int:
        """Count a failed login; return the lock now in force (seconds, 0 when none)."""
        return max(self.accounts.fail(account), self.addresses.fail(address))

    def succeeded(self, account: str) -> None:
        """A login succeeded: the account's count starts again."""
        self.accounts.clear(account)
