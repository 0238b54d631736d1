"""The forced renewal's arithmetic (the current certificate inside Caddy's renewal window, the
renewed one outside it) and its steps against a recorded admin API."""

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.certificates.renewal import MAX_SECONDS, ForcedRenewals, policy_id, renewal_ratio
from shared.messages.certificates import CertificateObservation

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAYS_90 = timedelta(days=90)


def cert(
    issued: datetime, name: str = "shop.example.test", fingerprint: str = "ab" * 32
) -> CertificateObservation:
    return CertificateObservation(
        domain_name=name,
        issuer="Pebble Intermediate CA",
        subject_alternative_names=[name],
        not_before=issued,
        not_after=issued + DAYS_90,
        fingerprint=fingerprint,
        key_algorithm="ECDSA-P256",
    )


def in_window(c: CertificateObservation, ratio: float, at: datetime) -> bool:
    """Caddy's (certmagic's) test: the renewal window is the last ``ratio`` of the lifetime."""
    lifetime = c.not_after - c.not_before
    return at > c.not_after - lifetime * ratio


def test_the_current_certificate_is_in_the_window_and_its_successor_is_not() -> None:
    for age in (timedelta(minutes=3), timedelta(hours=5), timedelta(days=30)):
        current = cert(NOW - age)
        ratio = renewal_ratio(current, NOW)
        assert ratio is not None
        assert 0 < ratio < 1  # Caddy ignores a ratio outside (0, 1)
        assert in_window(current, ratio, NOW)
        # Renewed a few seconds later and still under the policy a while after: outside.
        renewed = cert(NOW + timedelta(seconds=5))
        assert not in_window(renewed, ratio, NOW + timedelta(seconds=30))
    # Caddy's own default (a third) would not have renewed a 30-day-old certificate.
    assert not in_window(cert(NOW - timedelta(days=30)), 1 / 3, NOW)


def test_no_ratio_for_an_expired_or_a_brand_new_certificate() -> None:
    assert renewal_ratio(cert(NOW - DAYS_90 - timedelta(hours=1)), NOW) is None
    assert renewal_ratio(cert(NOW), NOW) is None
    assert renewal_ratio(cert(NOW + timedelta(minutes=1)), NOW) is None


class Admin:
    """Records calls; the policies list has one catch-all with an issuer."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.issuer = {"module": "acme", "ca": "https://ca.test/dir"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.calls.append((method, path, body))
        if method == "GET":
            return 200, [
                {"subjects": ["*.apps.test"], "on_demand": True},
                {"issuers": [self.issuer]},
            ]
        return 200, None


async def test_a_policy_goes_in_first_and_comes_out_once_the_renewal_is_stored() -> None:
    clock = [0.0]
    renewals, admin = ForcedRenewals(clock=lambda: clock[0]), Admin()
    current = cert(NOW - timedelta(days=10))
    renewals.want(["shop.example.test", "unknown.example.test"])
    await renewals.step(admin, {"shop.example.test": current})  # type: ignore[arg-type]
    # (then, as this admin takes the probe field, it reads the servers to evict from: none)
    [(_, _, _), (method, path, policy), *_] = admin.calls
    assert (method, path) == ("PUT", "/config/apps/tls/automation/policies/0")
    assert policy["@id"] == policy_id("shop.example.test")
    assert policy["subjects"] == ["shop.example.test"]
    assert policy["issuers"] == [admin.issuer]  # the catch-all's, not Caddy's default CA
    assert renewals.busy  # the name with no certificate was dropped, the other is pending

    admin.calls.clear()
    await renewals.step(admin, {"shop.example.test": current})  # type: ignore[arg-type]
    assert admin.calls == []  # not renewed yet: the policy stays
    # Renewed within the same second: the same X.509 times, another certificate.
    renewed = cert(current.not_before, fingerprint="cd" * 32)
    await renewals.step(admin, {"shop.example.test": renewed})  # type: ignore[arg-type]
    assert admin.calls == [("DELETE", f"/id/{policy_id('shop.example.test')}", None)]
    assert not renewals.busy


async def test_a_renewal_never_stored_is_given_up_after_its_time() -> None:
    clock = [0.0]
    renewals, admin = ForcedRenewals(clock=lambda: clock[0]), Admin()
    current = cert(NOW - timedelta(days=10))
    renewals.want(["shop.example.test"])
    await renewals.step(admin, {"shop.example.test": current})  # type: ignore[arg-type]
    clock[0] = MAX_SECONDS + 1
    admin.calls.clear()
    await renewals.step(admin, {"shop.example.test": current})  # type: ignore[arg-type]
    assert admin.calls == [("DELETE", f"/id/{policy_id('shop.example.test')}", None)]
    assert not renewals.busy
