"""Caddy 2.6.2's and 2.11.7's ACME log lines (captured from real runs against Pebble) -> stable
diagnoses."""

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.certificates.diagnostics import FailureTracker, address_in, diagnose, problem_of

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


# Caddy 2.11.7 against Pebble (tests/integration/test_certificates_e2e.py), copied from its log:
# ``challenge failed`` carries the CA's problem document as an object and no ``error`` field.
CHALLENGE_URL = "http://app.example.test:39193/.well-known/acme-challenge/xsqLdjqjFXQMjkHwozX"
REFUSED_DETAIL = (
    f'Get "{CHALLENGE_URL}Mx9lzFD4WwwG8hedrktv90v0": dial tcp 127.0.0.1:39193: connect: '
    "connection refused"
)
PROBLEM_211: dict[str, Any] = {
    "type": "urn:ietf:params:acme:error:connection",
    "title": "",
    "detail": REFUSED_DETAIL,
    "instance": "",
    "subproblems": None,
}
REFUSED_211: dict[str, Any] = {
    "level": "error",
    "ts": 1796626922.416556,
    "logger": "http.acme_client",
    "msg": "challenge failed",
    "identifier": NAME,
    "challenge_type": "http-01",
    "problem": PROBLEM_211,
}
VALIDATING_211 = {
    "level": "error",
    "ts": 1796626922.4166384,
    "logger": "http.acme_client",
    "msg": "validating authorization",
    "identifier": NAME,
    "problem": PROBLEM_211,
    "order": "https://127.0.0.1:46585/my-order/WLgVVASXFzsw9ybSI57KNWSQwuP9y5ABzhCkj3vUYnY",
    "attempt": 1,
    "max_attempts": 3,
}
ISSUER_211 = {
    "level": "error",
    "ts": 1796626922.4166791,
    "logger": "tls.obtain",
    "msg": "could not get certificate from issuer",
    "identifier": NAME,
    "issuer": "127.0.0.1:46585-dir",
    "error": f"HTTP 400 urn:ietf:params:acme:error:connection - {REFUSED_DETAIL}",
}
RETRY_211 = {
    "level": "error",
    "ts": 1796626922.4167068,
    "logger": "tls.obtain",
    "msg": "will retry",
    "error": f"[{NAME}] Obtain: [{NAME}] solving challenge: {NAME}: [{NAME}] authorization "
    f"failed: HTTP 400 urn:ietf:params:acme:error:connection - {REFUSED_DETAIL} "
    "(ca=https://127.0.0.1:46585/dir)",
    "attempt": 1,
    "retrying_in": 60,
    "elapsed": 0.272114757,
    "max_duration": 2592000,
}
# The same failure from Caddy 2.6.2 (its log of the same test): the flattened shape.
REFUSED_262 = {
    "level": "error",
    "ts": 1796626956.851402,
    "logger": "http.acme_client",
    "msg": "challenge failed",
    "identifier": NAME,
    "challenge_type": "http-01",
    "status_code": 400,
    "problem_type": "urn:ietf:params:acme:error:connection",
    "error": 'Get "http://app.example.test:60255/.well-known/acme-challenge/EAnD-TdfVte0uUghX'
    'eu6HrSA0A0WN8e8KTx34EBgwe8": dial tcp 127.0.0.1:60255: connect: connection refused',
}


def test_caddy_2_11s_problem_object_is_diagnosed_like_2_6s_flattened_error() -> None:
    tracker = FailureTracker()
    started = {**REFUSED_211, "level": "info", "msg": "obtaining certificate"}
    del started["problem"], started["challenge_type"]
    assert tracker.feed(started) is False
    assert tracker.feed(REFUSED_211) is True
    assert tracker.feed(VALIDATING_211) is False
    # Closing the attempt adds nothing: the challenge line named the cause.
    assert tracker.feed(ISSUER_211) is False
    assert tracker.feed(RETRY_211) is True
    [failure] = tracker.all_failures()
    assert failure.error_code == "acme_challenge_unreachable"
    assert failure.failure_phase == "challenge"
    assert failure.retriable is True
    assert failure.address == "127.0.0.1:39193"
    assert failure.challenge_type == "http-01"
    assert failure.problem_type == "urn:ietf:params:acme:error:connection"
    assert failure.failure_message.endswith(f": {REFUSED_DETAIL}")
    assert failure.occurred_at == datetime.fromtimestamp(1796626922.416556, UTC)
    assert failure.retry_after == datetime.fromtimestamp(1796626922.4167068 + 60, UTC)
    # The 2.6.2 line of the same failure reads the same, bar the port it dialed.
    old = FailureTracker()
    assert old.feed(REFUSED_262) is True
    [same] = old.all_failures()
    assert (same.error_code, same.failure_phase, same.problem_type, same.address) == (
        failure.error_code,
        failure.failure_phase,
        failure.problem_type,
        "127.0.0.1:60255",
    )
    assert same.failure_message.split(": Get ")[0] == failure.failure_message.split(": Get ")[0]


def test_caddy_2_11s_problem_object_names_the_address_dns_pointed_at() -> None:
    # Caddy 2.11.7's line when the name resolves to 127.0.0.2, where nothing listens: the
    # coordinator turns this into acme_dns_points_elsewhere from the dialed address.
    detail = (
        'Get "http://far.example.test:58687/.well-known/acme-challenge/_MqA2P79CBFvkQIGMj1L7ff'
        'JvwX_DZ46mR4zKbPI6yQ": dial tcp 127.0.0.2:58687: connect: connection refused'
    )
    line = {
        **REFUSED_211,
        "ts": 1796626927.1778965,
        "identifier": "far.example.test",
        "problem": {**PROBLEM_211, "detail": detail},
    }
    tracker = FailureTracker()
    assert tracker.feed(line) is True
    [failure] = tracker.all_failures()
    assert failure.domain_name == "far.example.test"
    assert failure.error_code == "acme_challenge_unreachable"
    assert failure.address == "127.0.0.2:58687"


def test_caddy_2_11s_ca_refusal_reads_as_before() -> None:
    # Caddy 2.11.7 still logs an order the CA refuses as a flat ``error``; its ``will retry``
    # words the order step differently ("attempt 1: <url>:" for "request to <url> failed").
    refused = (
        "HTTP 400 urn:ietf:params:acme:error:rejectedIdentifier - Order included an identifier "
        f'for which issuance is forbidden by policy: "{NAME}"'
    )
    tracker = FailureTracker()
    assert tracker.feed(
        _line(
            "could not get certificate from issuer",
            identifier=NAME,
            issuer="127.0.0.1:46009-dir",
            error=refused,
        )
    )
    retry = _line(
        "will retry",
        error=f"[{NAME}] Obtain: [{NAME}] creating new order: attempt 1: "
        f"https://127.0.0.1:46009/order-plz: {refused} (ca=https://127.0.0.1:46009/dir)",
        attempt=1,
        retrying_in=60,
        elapsed=0.007241486,
        max_duration=2592000,
    )
    assert tracker.feed(retry) is True
    [failure] = tracker.all_failures()
    assert failure.error_code == "acme_ca_refused_name"
    assert failure.retriable is False
    assert failure.problem_type == "urn:ietf:params:acme:error:rejectedIdentifier"
    assert failure.retry_after == failure.occurred_at + timedelta(seconds=60)


def test_problem_shapes_read_the_same() -> None:
    assert problem_of(REFUSED_262) == (
        "urn:ietf:params:acme:error:connection",
        REFUSED_262["error"],
    )
    assert problem_of(REFUSED_211) == ("urn:ietf:params:acme:error:connection", REFUSED_DETAIL)
    assert problem_of(ISSUER_211) == ("urn:ietf:params:acme:error:connection", ISSUER_211["error"])
    assert problem_of({"msg": "challenge failed"}) == ("", "")
    # Not seen from Pebble (made up to the RFC 8555 shape): a compound problem's per-identifier
    # causes stay in the text, so a rate limit inside one is still a rate limit.
    compound = {
        "problem": {
            "type": "urn:ietf:params:acme:error:compound",
            "detail": "2 problems",
            "subproblems": [
                {
                    "type": "urn:ietf:params:acme:error:rateLimited",
                    "detail": "too many certificates",
                    "identifier": {"type": "dns", "value": NAME},
                }
            ],
        }
    }
    kind, text = problem_of(compound)
    assert kind == "urn:ietf:params:acme:error:compound"
    assert text.startswith("2 problems; subproblems: ")
    assert diagnose(kind, text).code == "acme_rate_limited"
