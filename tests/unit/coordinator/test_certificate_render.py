"""The latest-attempt block ``berth certs show`` and ``berth wildcards show`` share."""

import pytest

from coordinator.client import certificate_render

FAILED = {
    "id": "cat_1",
    "reason": "issue",
    "status": "failed",
    "requestedAt": "2026-01-01T00:00:00Z",
    "failedAt": "2026-01-01T00:01:00Z",
    "errorCode": "acme_dns_points_elsewhere",
    "failurePhase": "challenge",
    "failureMessage": "resolves elsewhere",
    "failureDetails": {"observedTargets": ["127.0.0.2", "127.0.0.3"]},
    "retriable": True,
    "retryAfter": None,
}


def test_a_failed_binding_attempt_shows_what_dns_answered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    retry = certificate_render.latest_attempt(FAILED, retry_label="Edge retries", dns_observed=True)
    shown = capsys.readouterr().out
    assert retry is True
    assert "acme_dns_points_elsewhere (phase challenge)" in shown
    assert "127.0.0.2, 127.0.0.3" in shown
    assert "Edge retries" in shown


def test_a_wildcard_attempt_has_no_dns_row_and_its_own_retry_label(
    capsys: pytest.CaptureFixture[str],
) -> None:
    refused = {**FAILED, "retriable": False}
    retry = certificate_render.latest_attempt(refused, retry_label="Next try")
    shown = capsys.readouterr().out
    assert retry is False
    assert "DNS observed" not in shown
    assert "Next try" in shown
    assert "no: fix the cause first" in shown


def test_a_ready_attempt_shows_no_failure_and_no_attempt_shows_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ready = {"id": "cat_2", "reason": "renew", "status": "ready", "requestedAt": None}
    assert certificate_render.latest_attempt(ready, retry_label="Next try") is False
    shown = capsys.readouterr().out
    assert "renew ready (cat_2)" in shown
    assert "Why" not in shown
    assert certificate_render.latest_attempt(None, retry_label="Next try") is False
    assert capsys.readouterr().out == ""
    assert certificate_render.names(["a.test", "b.test"]) == "a.test, b.test"
    assert certificate_render.names([]) == "-"
