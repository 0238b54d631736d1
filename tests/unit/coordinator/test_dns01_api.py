"""DNS-01 routes against a real coordinator and database: bad input (400, nothing stored), the
outbound guard on the DNS server, masking, permissions, conflicts and the unreachable-server
diagnosis. The issuance itself is proven in tests/integration/test_dns01_*.py."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args

import pytest

from coordinator.api.dns01_schemas import TsigAlgorithm
from coordinator.dns01.providers import parse_server
from coordinator.dns01.rfc2136 import ALGORITHMS
from coordinator.dns01.serving import covers
from shared.errors import InvalidRequest
from tests.edge_proxy import free_port
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.support import assert_error, audit_events, database_dump
from tests.unit.coordinator.test_projects_api import create_project, scoped_token

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="


def _provider(**changes: Any) -> dict[str, Any]:
    return {
        "name": "primary",
        "serverAddress": "ns1.example.com:53",
        "zone": "example.com",
        "tsigKeyName": "berth-key",
        "tsigAlgorithm": "hmac-sha256",
        "tsigSecret": SECRET,
        **changes,
    }


@pytest.fixture
async def private_ok(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """Private targets allowed by the operator; nothing listens at the ACME directory."""
    harness = Coordinator(
        tmp_path / "coordinator",
        database_url,
        allow_private_webhook_targets=True,
        dns01_acme_directory=f"https://127.0.0.1:{free_port()}/dir",
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.close()


def test_the_algorithm_list_is_one_list() -> None:
    assert set(get_args(TsigAlgorithm)) == set(ALGORITHMS)


def test_server_addresses_parse_or_are_refused() -> None:
    assert parse_server("ns1.example.com") == ("ns1.example.com", 53)
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("[::1]:5353") == ("::1", 5353)
    for bad in ("ns1.example.com:x", "ns1:99999", "[::1]x", ":53", "*.example.com"):
        with pytest.raises(InvalidRequest):
            _ = parse_server(bad)


def test_a_wildcard_covers_its_apex_and_one_label_below() -> None:
    bases = ["apps.example.com"]
    assert covers(bases, "apps.example.com")
    assert covers(bases, "one.apps.example.com")
    assert not covers(bases, "a.b.apps.example.com")
    assert not covers(bases, "xapps.example.com")
    assert not covers(bases, "example.com")


async def test_bad_providers_are_400_and_store_nothing(
    coordinator: Coordinator, admin_token: str
) -> None:
    before = await database_dump(ignore={"last_used_at"})
    cases: list[tuple[dict[str, Any], str]] = [
        # Private targets are not allowed by default: loopback, private and link-local.
        (_provider(serverAddress="127.0.0.1:53"), "serverAddress"),
        (_provider(serverAddress="10.0.0.2"), "serverAddress"),
        (_provider(serverAddress="169.254.169.254"), "serverAddress"),
        (_provider(serverAddress="localhost:53"), "serverAddress"),
        (_provider(serverAddress="ns1.example.com:70000"), "serverAddress"),
        (_provider(tsigSecret="not base64!"), "tsigSecret"),
        (_provider(tsigSecret="c2hvcnQ="), "tsigSecret"),
        (_provider(zone="*.example.com"), "domainName"),
        (_provider(tsigKeyName="bad key\u0000"), "tsigKeyName"),
        (_provider(tsigKeyName="a..b"), "tsigKeyName"),
    ]
    for body, field in cases:
        error = assert_error(
            await coordinator.call("POST", "/dns-providers", token=admin_token, json=body),
            400,
            "invalid_request",
        )
        assert field in str(error), (body, error)
        assert SECRET not in str(error)
    assert_error(
        await coordinator.call(
            "POST", "/dns-providers", token=admin_token, json=_provider(tsigAlgorithm="md5")
        ),
        400,
        "invalid_request",
    )
    assert await database_dump(ignore={"last_used_at"}) == before


async def test_a_provider_is_masked_audited_and_needs_its_permission(
    coordinator: Coordinator, admin_token: str
) -> None:
    status, created, _ = await coordinator.call(
        "POST", "/dns-providers", token=admin_token, json=_provider()
    )
    assert status == 201, created
    status, listed, _ = await coordinator.call("GET", "/dns-providers", token=admin_token)
    assert status == 200, listed
    [item] = listed["items"]
    assert item["tsigSecret"] == "********"
    assert item["serverAddress"] == "ns1.example.com:53"
    assert SECRET not in str(listed)
    events = await audit_events(coordinator, admin_token)
    [event] = [e for e in events if e["eventType"] == "dns-provider.created"]
    assert SECRET not in str(event)
    assert_error(
        await coordinator.call("POST", "/dns-providers", token=admin_token, json=_provider()),
        409,
        "conflict",
    )
    reader = await scoped_token(coordinator, admin_token, ["certificates:write"])
    assert_error(
        await coordinator.call(
            "POST", "/dns-providers", token=reader, json=_provider(name="other")
        ),
        403,
        "forbidden",
    )
    assert_error(
        await coordinator.call("GET", f"/dns-providers/{created['id']}", token=reader),
        403,
        "forbidden",
    )
    assert_error(
        await coordinator.call("GET", "/dns-providers/dnp_missing", token=admin_token),
        404,
        "not_found",
    )
    # A token narrowed to a project reaches nothing organization-wide: 404, empty, 403.
    project_id = await create_project(coordinator, admin_token, "shop")
    narrow = await scoped_token(
        coordinator,
        admin_token,
        ["dns-providers:read", "dns-providers:write", "certificates:write"],
        projectIds=[project_id],
    )
    assert_error(
        await coordinator.call("GET", f"/dns-providers/{created['id']}", token=narrow),
        404,
        "not_found",
    )
    status, listed, _ = await coordinator.call("GET", "/dns-providers", token=narrow)
    assert (status, listed["items"]) == (200, [])
    assert_error(
        await coordinator.call("POST", "/dns-providers", token=narrow, json=_provider(name="n")),
        403,
        "forbidden",
    )
    assert_error(
        await coordinator.call(
            "POST",
            "/wildcard-certificates",
            token=narrow,
            json={"domainName": "apps.example.com", "dnsProviderId": created["id"]},
        ),
        403,
        "forbidden",
    )


async def test_wildcards_refuse_bad_input_and_diagnose_an_unreachable_dns_server(
    private_ok: Coordinator,
) -> None:
    c = private_ok
    token = await c.bootstrap()
    closed = free_port()
    status, created, _ = await c.call(
        "POST",
        "/dns-providers",
        token=token,
        json=_provider(serverAddress=f"127.0.0.1:{closed}", zone="dns01.test"),
    )
    assert status == 201, created
    provider_id = created["id"]
    before = await database_dump(ignore={"last_used_at"})
    for body, status_code, code in [
        ({"domainName": "apps.elsewhere.test", "dnsProviderId": provider_id}, 400, None),
        ({"domainName": "*.apps.dns01.test", "dnsProviderId": provider_id}, 400, None),
        ({"domainName": "apps.dns01.test", "dnsProviderId": "dnp_missing"}, 404, "not_found"),
        ({"domainName": "apps.dns01.test"}, 400, None),
    ]:
        answer = await c.call("POST", "/wildcard-certificates", token=token, json=body)
        assert_error(answer, status_code, code or "invalid_request")
    assert await database_dump(ignore={"last_used_at"}) == before

    status, answer, _ = await c.call(
        "POST",
        "/wildcard-certificates",
        token=token,
        json={"domainName": "apps.dns01.test", "dnsProviderId": provider_id},
    )
    assert status == 201, answer
    certificate_id = answer["certificateId"]
    assert_error(
        await c.call(
            "POST",
            "/wildcard-certificates",
            token=token,
            json={"domainName": "apps.dns01.test", "dnsProviderId": provider_id},
        ),
        409,
        "conflict",
    )

    async def failed() -> bool:
        _, shown, _ = await c.call("GET", f"/wildcard-certificates/{certificate_id}", token=token)
        return bool(shown["latestAttempt"]["status"] == "failed")

    await eventually(failed, timeout=30, what="the attempt against a closed port to fail")
    _, shown, _ = await c.call("GET", f"/wildcard-certificates/{certificate_id}", token=token)
    attempt = shown["latestAttempt"]
    assert attempt["errorCode"] == "dns_server_unreachable", attempt
    assert attempt["failurePhase"] == "dns"
    assert attempt["retriable"] is True
    assert attempt["retryAfter"] is not None
    assert attempt["challengeType"] == "dns-01"
    assert shown["status"] == "failed"

    # In use: the provider cannot go; the certificate's deletion repeats its id.
    assert_error(
        await c.call("DELETE", f"/dns-providers/{provider_id}", token=token), 409, "conflict"
    )
    assert_error(
        await c.call(
            "DELETE",
            f"/wildcard-certificates/{certificate_id}",
            token=token,
            json={"confirmation": {"certificateId": "wcr_other"}},
        ),
        400,
        "invalid_request",
    )
    status, answer, _ = await c.call(
        "DELETE",
        f"/wildcard-certificates/{certificate_id}",
        token=token,
        json={"confirmation": {"certificateId": certificate_id}},
    )
    assert status == 200, answer
    status, answer, _ = await c.call("DELETE", f"/dns-providers/{provider_id}", token=token)
    assert status == 200, answer
    kinds = [e["eventType"] for e in await audit_events(c, token)]
    for kind in (
        "dns-provider.created",
        "wildcard-certificate.issue-requested",
        "wildcard-certificate.failed",
        "wildcard-certificate.deleted",
        "dns-provider.deleted",
    ):
        assert kind in kinds, kinds
