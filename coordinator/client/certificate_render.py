"""How ``berth certs`` and ``berth wildcards`` show a certificate's names and latest attempt
(both answer in the certificate attempt's terms)."""

from coordinator.client import render


def names(sans: object) -> str:
    """The subject alternative names as one cell ("-": none)."""
    return ", ".join(map(str, sans)) if isinstance(sans, list) and sans else "-"


def latest_attempt(attempt: object, *, retry_label: str, dns_observed: bool = False) -> bool:
    """Show the latest attempt, and why it failed if it did (``dns_observed``: with the
    addresses the name resolved to). Whether a retry would help now (failed, retriable)."""
    if not isinstance(attempt, dict):
        return False
    rows: list[tuple[str, object]] = [
        ("Attempt", f"{attempt.get('reason')} {attempt.get('status')} ({attempt.get('id')})"),
        ("Requested", attempt.get("requestedAt")),
    ]
    failed = attempt.get("status") == "failed"
    if failed:
        rows += [
            ("Failed", attempt.get("failedAt")),
            ("Error", f"{attempt.get('errorCode')} (phase {attempt.get('failurePhase')})"),
            ("Why", attempt.get("failureMessage")),
        ]
        if dns_observed:
            details = attempt.get("failureDetails") or {}
            observed = details.get("observedTargets") if isinstance(details, dict) else None
            rows.append(("DNS observed", ", ".join(map(str, observed)) if observed else "-"))
        rows += [
            ("Retriable", "yes" if attempt.get("retriable") else "no: fix the cause first"),
            (retry_label, attempt.get("retryAfter") or "-"),
        ]
    render.details(rows, title="Latest attempt")
    return failed and bool(attempt.get("retriable"))
