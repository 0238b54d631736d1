"""Account logic without a server: password policy and hashing, login backoff, TOTP and codes."""

import pytest

from coordinator.accounts import passwords, totp
from coordinator.accounts.lockout import (
    ACCOUNT_FREE_FAILURES,
    ADDRESS_FREE_FAILURES,
    BASE_LOCK_SECONDS,
    MAX_LOCK_SECONDS,
    WINDOW_SECONDS,
    Backoff,
    LoginThrottle,
)


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 12"),
        ("aaaaaaaaaaaaaaaa", "different characters"),
        ("Password1234", "breached"),
        ("QWERTYUIOPAS", "breached"),
        ("x" * 300, "at most"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, reason: str) -> None:
    found = passwords.weakness(password)
    assert found is not None
    assert reason in found
    assert password not in found


def test_the_email_is_not_a_password_and_a_good_one_passes() -> None:
    assert passwords.weakness("ops.person@example.com", "ops.person@example.com") is not None
    assert passwords.weakness("ops.person.admin", "ops.person.admin@example.com") is not None
    assert passwords.weakness("tram-lantern-opal-93", "ops@example.com") is None


async def test_argon2id_hashes_verify_and_carry_their_parameters() -> None:
    stored = await passwords.hash_password("tram-lantern-opal-93")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert "tram-lantern" not in stored
    assert await passwords.verify_password(stored, "tram-lantern-opal-93")
    assert not await passwords.verify_password(stored, "tram-lantern-opal-94")
    assert not await passwords.verify_password(None, "anything at all")
    assert not passwords.needs_rehash(stored)
    assert passwords.needs_rehash("not a hash")


def test_an_account_locks_after_its_free_failures_and_doubles() -> None:
    clock = Clock()
    backoff = Backoff(ACCOUNT_FREE_FAILURES, clock=clock)
    for _ in range(ACCOUNT_FREE_FAILURES - 1):
        assert backoff.fail("a") == 0
        assert backoff.retry_after("a") == 0
    assert backoff.fail("a") == BASE_LOCK_SECONDS
    assert backoff.retry_after("a") == BASE_LOCK_SECONDS
    assert backoff.fail("a") == 2 * BASE_LOCK_SECONDS
    clock.now += 10
    assert backoff.retry_after("a") == 2 * BASE_LOCK_SECONDS - 10
    for _ in range(40):
        backoff.fail("a")
    assert backoff.retry_after("a") == MAX_LOCK_SECONDS
    assert backoff.retry_after("b") == 0
    clock.now += MAX_LOCK_SECONDS + 1
    assert backoff.retry_after("a") == 0


def test_old_failures_are_forgotten_and_success_clears_the_account_only() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock)
    for _ in range(ACCOUNT_FREE_FAILURES - 1):
        throttle.failed("a@x", "10.0.0.1")
    clock.now += WINDOW_SECONDS + 1
    assert throttle.failed("a@x", "10.0.0.1") == 0  # the count started again
    throttle.succeeded("a@x")
    assert throttle.accounts.failures("a@x") == 0
    assert throttle.addresses.failures("10.0.0.1") == 1


def test_one_address_guessing_many_accounts_is_locked() -> None:
    throttle = LoginThrottle(Clock())
    for i in range(ADDRESS_FREE_FAILURES):
        throttle.failed(f"user{i}@x", "10.0.0.9")
    assert throttle.retry_after("fresh@x", "10.0.0.9") == BASE_LOCK_SECONDS
    assert throttle.retry_after("fresh@x", "10.0.0.8") == 0


def test_totp_codes_work_once_and_only_near_their_time() -> None:
    secret = totp.new_secret()
    at = 1_800_000_000.0
    code = totp.current_code(secret, at)
    step = totp.accepted_step(secret, code, None, at)
    assert step == int(at // 30)
    assert totp.accepted_step(secret, code, step, at) is None  # replay within its window
    assert totp.accepted_step(secret, code, None, at + 30) == step  # one step of drift
    assert totp.accepted_step(secret, code, None, at + 90) is None
    assert totp.accepted_step(secret, "12345", None, at) is None
    assert totp.accepted_step(secret, "abcdef", None, at) is None
    uri = totp.provisioning_uri(secret, "ops@example.com")
    assert uri.startswith("otpauth://totp/Berth:ops%40example.com?secret=" + secret)


def test_recovery_codes_are_random_and_hash_without_formatting() -> None:
    codes = totp.new_recovery_codes()
    assert len(set(codes)) == totp.RECOVERY_CODE_COUNT
    first = codes[0]
    assert len(first.replace("-", "")) == 16
    assert totp.recovery_code_hash(first) == totp.recovery_code_hash(
        first.upper().replace("-", " ")
    )
    assert totp.recovery_code_hash(first) != totp.recovery_code_hash(codes[1])


async def test_an_unknown_account_costs_a_full_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    from coordinator.accounts import login
    from coordinator.db import models
    from shared.errors import Unauthorized

    calls: list[str | None] = []

    async def verify(stored: str | None, password: str) -> bool:
        calls.append(stored)
        return False

    async def no_user(**_: object) -> None:
        return None

    async def no_audit(*_: object) -> None:
        return None

    monkeypatch.setattr(passwords, "verify_password", verify)
    monkeypatch.setattr(models.User, "get_or_none", no_user)
    monkeypatch.setattr(login, "_audit_failure", no_audit)
    attempt = login.Attempt(
        "nobody@x", "pw-123456789", None, None, "web", None, "10.0.0.1", None, None
    )
    with pytest.raises(Unauthorized):
        await login.login(attempt, throttle=LoginThrottle(), keyring=None, absolute_seconds=60)  # type: ignore[arg-type]
    assert calls == [None]  # the filler hash was verified
