"""DNS-01 orders in the operator work ledger: newest first, only the certificate's latest failed
attempt offers a retry, the status filter and the limit apply before the ledger merges kinds."""

from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator.db.dns01_models import WildcardCertificate, WildcardCertificateAttempt
from tests.harness import Coordinator

NOW = datetime.now(UTC).replace(microsecond=0)


async def _orders() -> None:
    """One wildcard of the default organization with three attempts: failed, issued, failed."""
    _ = await WildcardCertificate.create(
        id="wcr_work",
        organization_id="org_default",
        dns_provider_id="dnp_work",
        domain_name="apps.example.test",
        status="failed",
        acme_directory="https://ca.example.test/dir",
        created_at=NOW,
    )
    for n, status in enumerate(("failed", "issued", "failed"), start=1):
        moment = NOW - timedelta(hours=4 - n)
        _ = await WildcardCertificateAttempt.create(
            id=f"wca_000{n}",
            certificate_id="wcr_work",
            status=status,
            reason="renew" if n > 1 else "issue",
            provider_key="rfc2136",
            requested_at=moment,
            issued_at=moment if status == "issued" else None,
            failed_at=moment if status == "failed" else None,
            error_code="dns_server_unreachable" if status == "failed" else None,
            retriable=status == "failed",
        )


async def _work(coordinator: Coordinator, token: str, query: str) -> list[dict[str, Any]]:
    status, answer, _ = await coordinator.call(
        "GET", f"/operator-work?kind=certificate{query}", token=token
    )
    assert status == 200, answer
    return [item for item in answer["items"] if item["id"].startswith("wca_")]


async def test_only_the_latest_failed_order_offers_a_retry(
    coordinator: Coordinator, admin_token: str
) -> None:
    await _orders()
    items = await _work(coordinator, admin_token, "")
    assert [(i["id"], i["status"]) for i in items] == [
        ("wca_0003", "failed"),
        ("wca_0002", "succeeded"),
        ("wca_0001", "failed"),
    ]
    assert [i["nextActions"] for i in items] == [["retry"], [], []]
    assert items[0]["operationKey"] == "certificate.renew"


async def test_the_status_filter_and_the_limit_apply_to_the_orders(
    coordinator: Coordinator, admin_token: str
) -> None:
    await _orders()
    failed = await _work(coordinator, admin_token, "&status=failed")
    assert [i["id"] for i in failed] == ["wca_0003", "wca_0001"]
    one = await _work(coordinator, admin_token, "&status=failed&limit=1")
    assert [i["id"] for i in one] == ["wca_0003"]
    succeeded = await _work(coordinator, admin_token, "&status=succeeded")
    assert [i["id"] for i in succeeded] == ["wca_0002"]
