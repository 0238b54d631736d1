"""Caddy 2.6's ACME log lines (captured from real runs against Pebble) -> stable diagnoses."""

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.certificates.diagnostics import FailureTracker, address_in, diagnose

NAME = "app.example.test"
TS = 1796541332.5


def _line(msg: str, **fields: Any) -> dict[str, Any]:
    return {"level": "error", "ts": TS, "logger": "tls.obtain", "msg": msg, **fields}


CANCELED = _line(
    "could not get certificate from issuer",
    identifier=NAME,
    error="registering account [mailto:ops@example.test] with server: provisioning client: "
    "context canceled",
)
REFUSED = {
    "level": "error",
    "ts": TS,
    "logger": "http.acme_client",
    "msg": "challenge failed",
    "identifier": NAME,
    "challenge_type": "http-01",
    "status_code": 400,
    "problem_type": "urn:ietf:params:acme:error:connection",
    "error": 'Get "http://app.example.test:45953/.well-known/acme-challenge/x": dial tcp '
    "127.0.0.1:45953: connect: connection refused",
}
REJECTED = _line(
    "could not get certificate from issuer",
    identifier=NAME,
    error="HTTP 400 urn:ietf:params:acme:error:rejectedIdentifier - Order included an "
    'identifier for which issuance is forbidden by policy: "app.example.test"',
)
WILL_RETRY = _line(
    "will retry",
    error=f"[{NAME}] Obtain: [{NAME}] creating new order: ... (ca=https://127.0.0.1:1/dir)",
    attempt=1,
    retrying_in=60,
)


def test_a_refused_challenge_connection_is_unreachable_with_the_dialed_address() -> None:
    tracker = FailureTracker()
    assert tracker.feed(_line("obtaining certificate", identifier=NAME)) is False
    assert tracker.feed(REFUSED) is True
    # Closing the same attempt adds nothing: the challenge line named the cause.
    assert tracker.feed(_line("could not get certificate from issuer", identifier=NAME)) is False
    assert tracker.feed(WILL_RETRY) is True
    [failure] = tracker.all_failures()
    assert failure.error_code == "acme_challenge_unreachable"
    assert failure.failure_phase == "challenge"
    assert failure.retriable is True
    assert failure.address == "127.0.0.1:45953"
    assert failure.challenge_type == "http-01"
    assert failure.occurred_at == datetime.fromtimestamp(TS, UTC)
    assert failure.retry_after == failure.occurred_at + timedelta(seconds=60)


def test_an_order_caddy_cancelled_on_reload_is_no_failure() -> None:
    tracker = FailureTracker()
    assert tracker.feed(CANCELED) is False
    assert tracker.all_failures() == []


def test_a_ca_refusal_is_not_retriable_and_names_the_problem_type() -> None:
    tracker = FailureTracker()
    assert tracker.feed(REJECTED) is True
    [failure] = tracker.all_failures()
    assert failure.error_code == "acme_ca_refused_name"
    assert failure.retriable is False
    assert failure.problem_type == "urn:ietf:params:acme:error:rejectedIdentifier"


def test_each_cause_has_its_code() -> None:
    cases = {
        ("urn:ietf:params:acme:error:rateLimited", "too many certificates"): "acme_rate_limited",
        ("urn:ietf:params:acme:error:caa", "CAA record forbids"): "acme_caa_forbidden",
        ("urn:ietf:params:acme:error:malformed", 'Could not resolve URL "nx"'): (
            "acme_dns_unresolvable"
        ),
        ("urn:ietf:params:acme:error:unauthorized", "returned 404"): (
            "acme_challenge_answered_elsewhere"
        ),
        ("urn:ietf:params:acme:error:unauthorized", "Failed to connect to 127.0.0.2:5001 for"): (
            "acme_challenge_unreachable"
        ),
        ("urn:ietf:params:acme:error:accountDoesNotExist", "account does not exist"): (
            "acme_account_invalid"
        ),
        ("", "x509: certificate signed by unknown authority"): "acme_ca_unreachable",
        ("urn:ietf:params:acme:error:serverInternal", "oops"): "acme_ca_refused",
        ("", "something else"): "acme_order_failed",
    }
    for (problem, error), code in cases.items():
        assert diagnose(problem, error).code == code, (problem, error)


def test_rate_limit_retry_time_comes_from_the_ca() -> None:
    tracker = FailureTracker()
    error = (
        "HTTP 429 urn:ietf:params:acme:error:rateLimited - too many certificates: "
        "retry after 2026-12-07 09:00:00 UTC: see https://letsencrypt.org/docs/rate-limits/"
    )
    assert tracker.feed(
        _line("could not get certificate from issuer", identifier=NAME, error=error)
    )
    [failure] = tracker.all_failures()
    assert failure.retry_after == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_addresses_are_read_from_both_error_shapes() -> None:
    assert address_in("dial tcp 127.0.0.2:5002: connect: connection refused") == "127.0.0.2:5002"
    assert address_in("Failed to connect to 10.0.0.1:80 for the http-01") == "10.0.0.1:80"
    assert address_in("dial tcp [2001:db8::1]:80: connect: refused") == "[2001:db8::1]:80"
    assert address_in("no address here") is None
