"""Caddy's ACME log lines -> a stable diagnosis: phase, errorCode, retriable, retry time.

Caddy 2.6 reports an order's fate only in its logs (no admin endpoint, no event payload: the
``cert_failed`` event's error is serialised as ``{}``). The per-challenge line ``challenge
failed`` names the real cause; ``could not get certificate from issuer`` closes the attempt and
``will retry`` says when Caddy tries again (the same messages on Caddy 2.11, whose ``challenge
failed`` carries the CA's problem as an object: ``problem_of``). Codes: docs/certificates.md.
"""

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from shared.messages.certificates import CertificateFailure, FailurePhase

_ACME_ERROR: Final = "urn:ietf:params:acme:error:"
# "dial tcp 127.0.0.2:5002: connect: connection refused" / "Failed to connect to 1.2.3.4:80 for"
_ADDRESS: Final = re.compile(r"(?:dial tcp|connect to) (\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)")
# Let's Encrypt: "... retry after 2026-12-06 09:00:00 UTC: see https://..."
_PROBLEM: Final = re.compile(r"urn:ietf:params:acme:error:[A-Za-z]+")
# "will retry" names its identifier only at the start of its error: "[name] Obtain: ..."
_LEADING_NAME: Final = re.compile(r"^\[([^\]\s]+)\]")
_RETRY_AFTER: Final = re.compile(r"retry after (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)")


@dataclass(frozen=True)
class Diagnosis:
    """What went wrong, in stable terms."""

    phase: FailurePhase
    code: str
    retriable: bool
    hint: str


def _when(entry: dict[str, Any]) -> datetime:
    ts = entry.get("ts")
    if isinstance(ts, int | float):
        return datetime.fromtimestamp(ts, UTC)
    return datetime.now(UTC)


def address_in(text: str) -> str | None:
    """The ``host:port`` the CA (or Caddy) tried to reach, when the error names one."""
    found = _ADDRESS.search(text)
    return f"{found.group(1)}:{found.group(2)}" if found else None


def _retry_after(text: str) -> datetime | None:
    found = _RETRY_AFTER.search(text)
    if found is None:
        return None
    try:
        return datetime.fromisoformat(found.group(1).replace(" ", "T")).replace(tzinfo=UTC)
    except ValueError:
        return None


def problem_of(entry: dict[str, Any]) -> tuple[str, str]:
    """The ACME problem type (or ``""``) and the error text of one log entry, in either shape.

    Caddy 2.6 flattens the CA's problem document: ``problem_type`` plus an ``error`` string
    (``challenge failed``), or only ``error`` with the URN inside it (``HTTP 400 urn:...``).
    Caddy 2.11 logs ``challenge failed`` with the document itself as an object, ``problem``
    ``{type, title, detail, instance, subproblems}``, and no ``error`` field at all. The shape
    present is the signal, so no Caddy version is guessed and either Caddy reads the same.
    """
    problem = entry.get("problem")
    if isinstance(problem, dict):
        kind = str(problem.get("type") or "")
        text = str(problem.get("detail") or problem.get("title") or "")
        subproblems = problem.get("subproblems")
        if subproblems:
            # Per-identifier causes of a compound problem: kept verbatim (its layout is the
            # logger's, not the RFC's), so the words that classify it still reach diagnose().
            text = f"{text}; subproblems: {json.dumps(subproblems, separators=(',', ':'))}"
        return kind, text
    error = str(entry.get("error") or "")
    named = _PROBLEM.search(error)
    return str(entry.get("problem_type") or (named.group(0) if named else "")), error


def diagnose(problem_type: str, error: str) -> Diagnosis:
    """Classify one failure from the ACME problem type and the error text."""
    kind = problem_type.removeprefix(_ACME_ERROR) if problem_type else ""
    lowered = error.lower()
    if kind == "rateLimited" or "ratelimited" in lowered or "rate limit" in lowered:
        return Diagnosis("ca", "acme_rate_limited", True, "the CA rate-limits this name or account")
    if kind == "caa" or "caa record" in lowered:
        return Diagnosis("ca", "acme_caa_forbidden", False, "a CAA record forbids this CA")
    if kind == "rejectedIdentifier" or "rejectedidentifier" in lowered:
        return Diagnosis(
            "ca", "acme_ca_refused_name", False, "the CA refuses to issue for this name"
        )
    if (kind in ("accountDoesNotExist", "unauthorized") and "account" in lowered) or (
        "jws verification" in lowered
    ):
        return Diagnosis("account", "acme_account_invalid", False, "the ACME account is not usable")
    if (
        kind == "dns"
        or "could not resolve" in lowered
        or "nxdomain" in lowered
        or "no valid a records" in lowered
        or "dns problem" in lowered
    ):
        return Diagnosis("dns", "acme_dns_unresolvable", True, "the CA could not resolve the name")
    if kind in ("connection", "unauthorized", "incorrectResponse", "tls") and (
        "connection refused" in lowered
        or "failed to connect" in lowered
        or "timeout" in lowered
        or "no route to host" in lowered
    ):
        return Diagnosis(
            "challenge",
            "acme_challenge_unreachable",
            True,
            "the CA could not connect to the challenge port (80 for HTTP-01) at this address",
        )
    if kind in ("unauthorized", "incorrectResponse") or "status code" in lowered:
        return Diagnosis(
            "challenge",
            "acme_challenge_answered_elsewhere",
            True,
            "something other than this server's edge answered the challenge",
        )
    if "x509" in lowered or "dial tcp" in lowered or "connection refused" in lowered:
        return Diagnosis("ca", "acme_ca_unreachable", True, "the ACME directory is unreachable")
    if kind:
        return Diagnosis("ca", "acme_ca_refused", True, f"the CA refused the order ({kind})")
    return Diagnosis("order", "acme_order_failed", True, "the ACME order failed")


class FailureTracker:
    """Folds Caddy's log lines into one failure per failed attempt, per name.

    ``challenge failed`` is recorded at once (it names the real cause). ``could not get
    certificate from issuer`` counts only when no challenge failed in the same attempt, and
    never for ``context canceled``: Caddy cancels an order in flight whenever its config is
    reloaded and starts it again, which is no failure of the name.
    """

    def __init__(self, keep: int = 20) -> None:
        self._keep = keep
        self._challenge_failed: set[str] = set()
        self.failures: dict[str, list[CertificateFailure]] = {}

    def feed(self, entry: dict[str, Any]) -> bool:
        """Take one log entry; True when the certificate picture may have changed."""
        message = entry.get("msg")
        name = str(entry.get("identifier") or "")
        if not name and message == "will retry":
            leading = _LEADING_NAME.match(str(entry.get("error") or ""))
            name = leading.group(1) if leading else ""
        if not name:
            return False
        if message == "obtaining certificate":
            self._challenge_failed.discard(name)
            return False
        if message == "challenge failed":
            self._challenge_failed.add(name)
            self._add(name, entry)
            return True
        if message == "could not get certificate from issuer":
            if name in self._challenge_failed or "context canceled" in str(entry.get("error")):
                return False
            self._add(name, entry)
            return True
        if message == "will retry" and self.failures.get(name):
            seconds = entry.get("retrying_in")
            if isinstance(seconds, int | float):
                last = self.failures[name][-1]
                retry = _when(entry) + timedelta(seconds=float(seconds))
                self.failures[name][-1] = last.model_copy(update={"retry_after": retry})
                return True
            return False
        return message == "certificate obtained successfully"

    def _add(self, name: str, entry: dict[str, Any]) -> None:
        problem, error = problem_of(entry)
        found = diagnose(problem, error)
        failure = CertificateFailure(
            domain_name=name,
            occurred_at=_when(entry),
            failure_phase=found.phase,
            error_code=found.code,
            failure_message=f"{found.hint}: {error}"[:2000],
            retriable=found.retriable,
            retry_after=_retry_after(error),
            challenge_type=str(entry["challenge_type"]) if entry.get("challenge_type") else None,
            address=address_in(error),
            problem_type=problem or None,
        )
        kept = self.failures.setdefault(name, [])
        kept.append(failure)
        del kept[: -self._keep]

    def all_failures(self) -> list[CertificateFailure]:
        """Every kept failure, oldest first per name."""
        return [f for kept in self.failures.values() for f in kept]
