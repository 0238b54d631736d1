"""Rate limits: per token and per address, 429 + Retry-After, X-RateLimit-* headers, OpenAPI."""

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.api.openapi import build_openapi
from coordinator.ratelimit import TokenBuckets, client_key
from shared.version import AGENT_CONNECT_PATH, AGENT_ENROLL_PATH
from tests.harness import Coordinator, serving
from tests.unit.coordinator.support import Response, assert_error, header

FIRST_ADMIN = "/bootstrap/auth/first-admin"


def guessed_token() -> str:
    """A well-formed API token that no one was ever given."""
    return "berth_at_" + secrets.token_urlsafe(32)


def limits(response: Response) -> tuple[int, int, int]:
    """(limit, remaining, reset) from a response's X-RateLimit-* headers."""
    _, _, headers = response
    values = [header(headers, f"X-RateLimit-{name}") for name in ("Limit", "Remaining", "Reset")]
    assert all(v is not None and v.isdigit() for v in values), headers
    limit, remaining, reset = (int(str(v)) for v in values)
    return limit, remaining, reset


def assert_throttled(response: Response) -> None:
    """A 429 in the error envelope, retriable, with Retry-After and an empty bucket."""
    error = assert_error(response, 429, "rate_limited")
    assert error["retriable"] is True
    retry_after = header(response[2], "Retry-After")
    assert retry_after is not None
    assert int(retry_after) >= 1
    assert limits(response)[1] == 0


@pytest.fixture
async def tight(tmp_path: Path, database_url: str) -> AsyncIterator[Coordinator]:
    """A coordinator with five requests a minute per token and per anonymous address."""
    async with serving(
        tmp_path / "tight",
        database_url,
        rate_limit_token_per_minute=5,
        rate_limit_anonymous_per_minute=5,
    ) as harness:
        yield harness


def test_buckets_refill_over_the_window_and_forget_idle_keys() -> None:
    now = [1000.0]
    buckets = TokenBuckets(6, 60.0, max_keys=3, clock=lambda: now[0])
    assert [buckets.charge("a").allowed for _ in range(7)] == [True] * 6 + [False]
    refused = buckets.charge("a")
    assert (refused.remaining, refused.retry_after) == (0, 10)  # one request per 10 s
    now[0] += 10
    assert buckets.charge("a").allowed
    assert not buckets.charge("a").allowed
    for key in "bcdefg":
        buckets.charge(key)
    assert len(buckets) == 3  # bounded: least recently used keys are dropped
    now[0] += 60  # a window later every bucket is full again: idle keys drain away
    buckets.charge("h")
    buckets.charge("h")
    assert len(buckets) <= 2
    wall = time.time()
    decision = TokenBuckets(60, 60.0).charge("x")
    assert decision.remaining == 59
    assert wall <= decision.reset_epoch <= wall + 2


def test_ipv6_clients_are_keyed_by_their_slash_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("unknown") == "unknown"


async def test_every_response_carries_the_rate_limit_headers(
    coordinator: Coordinator, admin_token: str
) -> None:
    first = await coordinator.call("GET", "/servers", token=admin_token)
    second = await coordinator.call("GET", "/servers", token=admin_token)
    assert first[0] == second[0] == 200
    limit, remaining, reset = limits(first)
    assert limit == 1200
    assert limits(second)[1] == remaining - 1
    assert reset >= int(time.time())
    # Errors and unauthenticated routes carry them too (the per-address buckets).
    missing = await coordinator.call("GET", "/servers/srv_missing", token=admin_token)
    assert_error(missing, 404, "not_found")
    assert limits(missing)[0] == 1200
    assert limits(await coordinator.call("GET", "/openapi.json"))[0] == 300
    assert limits(await coordinator.call("GET", "/nowhere"))[0] == 300


async def test_a_token_over_its_limit_gets_429_and_others_do_not(tight: Coordinator) -> None:
    admin = await tight.bootstrap()
    answers = [await tight.call("GET", "/servers", token=admin) for _ in range(5)]
    # The bootstrap call went to its own bucket: five token requests are allowed.
    assert [a[0] for a in answers] == [200] * 5
    assert [limits(a)[1] for a in answers] == [4, 3, 2, 1, 0]
    assert_throttled(await tight.call("GET", "/servers", token=admin))
    # The anonymous bucket of the same address is separate.
    assert (await tight.call("GET", "/openapi.json"))[0] == 200


async def test_bootstrap_is_limited_tightly_per_address(coordinator: Coordinator) -> None:
    body = {"email": "admin@example.com", "displayName": "Admin"}
    answers = [await coordinator.call("POST", FIRST_ADMIN, json=body) for _ in range(10)]
    assert answers[0][0] == 201
    assert {a[0] for a in answers[1:]} == {409}
    assert limits(answers[0])[0] == 10
    assert_throttled(await coordinator.call("POST", FIRST_ADMIN, json=body))


async def test_enrollment_is_limited_tightly_per_address(coordinator: Coordinator) -> None:
    def attempt() -> dict[str, Any]:
        return {"joinToken": "berth_jt_" + secrets.token_urlsafe(32), "publicKey": "x" * 44}

    answers = [await coordinator.call("POST", AGENT_ENROLL_PATH, json=attempt()) for _ in range(30)]
    assert all(400 <= status < 500 and status != 429 for status, _, _ in answers)
    assert limits(answers[0])[0] == 30
    assert_throttled(await coordinator.call("POST", AGENT_ENROLL_PATH, json=attempt()))


async def test_guessed_tokens_spend_the_address_budget(tight: Coordinator) -> None:
    """Each made-up token would get a fresh bucket; instead it costs its address."""
    admin = await tight.bootstrap()
    assert (await tight.call("GET", "/servers", token=admin))[0] == 200  # admin is known now
    answers: list[Response] = []
    for _ in range(6):
        answers.append(await tight.call("GET", "/openapi.json", token=guessed_token()))
        if answers[-1][0] == 429:
            break
    assert_throttled(answers[-1])
    # Public routes do not look at the token, so the guesses were answered until the address
    # budget ran out.
    assert [a[0] for a in answers[:-1]] == [200] * (len(answers) - 1)
    assert_throttled(await tight.call("GET", "/servers", token=guessed_token()))
    # Anonymous requests and the known token have budgets of their own.
    assert (await tight.call("GET", "/openapi.json"))[0] == 200
    assert (await tight.call("GET", "/servers", token=admin))[0] == 200


async def test_anonymous_traffic_does_not_lock_out_token_holders(tight: Coordinator) -> None:
    admin = await tight.bootstrap()
    for _ in range(5):
        assert (await tight.call("GET", "/openapi.json"))[0] == 200
    assert_throttled(await tight.call("GET", "/openapi.json"))
    assert (await tight.call("GET", "/servers", token=admin))[0] == 200


async def test_forwarded_for_counts_only_from_a_trusted_proxy(
    tight: Coordinator, tmp_path: Path, database_url: str
) -> None:
    def via(client: str) -> dict[str, str]:
        return {"X-Forwarded-For": f"{client}, 127.0.0.1"}

    # Not trusted: the header is ignored, every request is 127.0.0.1's.
    for index in range(5):
        assert (await tight.call("GET", "/openapi.json", headers=via(f"203.0.113.{index}")))[0]
    assert_throttled(await tight.call("GET", "/openapi.json", headers=via("203.0.113.99")))
    proxied = Coordinator(
        tmp_path / "proxied",
        database_url,
        rate_limit_anonymous_per_minute=5,
        trusted_proxies=["127.0.0.1/32"],
    )
    await proxied.start()
    try:
        for _ in range(5):
            assert (await proxied.call("GET", "/openapi.json", headers=via("203.0.113.1")))[
                0
            ] == 200
        assert_throttled(await proxied.call("GET", "/openapi.json", headers=via("203.0.113.1")))
        assert (await proxied.call("GET", "/openapi.json", headers=via("203.0.113.2")))[0] == 200
    finally:
        await proxied.close()


async def test_the_agent_websocket_is_not_limited(tight: Coordinator) -> None:
    for _ in range(8):
        status, _, headers = await tight.call("GET", AGENT_CONNECT_PATH)
        assert status != 429
        assert header(headers, "X-RateLimit-Limit") is None


def test_every_operation_documents_429_with_the_headers() -> None:
    document = build_openapi()
    headers = {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == AGENT_CONNECT_PATH:
                assert "429" not in operation["responses"]
                continue
            answer = operation["responses"].get("429")
            assert answer is not None, (method, path)
            assert answer["content"]["application/json"]["schema"] == envelope
            assert set(answer["headers"]) == headers
            assert all(h["schema"]["type"] == "integer" for h in answer["headers"].values())
            checked += 1
    assert checked > 50
