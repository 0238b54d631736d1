"""Schemathesis over every operation of ``/openapi.json`` against a live coordinator on loopback.

Checks: no server error, status codes and content types the document declares, bodies that match
the declared schemas. Path ids come from seeded rows so operations get past the 404 and reach
their real logic; a share of cases keeps generated path ids, so malformed ids are fuzzed too.
"""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.dns_server import ZONE, DnsServer
from tests.harness import Coordinator, scaled, serving
from tests.unit.coordinator.support import mint_token
from tests.unit.coordinator.test_deployment_engine import create_deployment, make_world


def not_a_server_error_but_agent_offline(ctx: Any, response: Any, case: Any) -> bool | None:
    """``not_a_server_error``, except the 503 an agent route declares: no agent is connected here.

    The seeded servers have no live agent (a real one would make every capacity, log and runtime
    call a Docker round trip); such routes must answer the declared, retriable 503 envelope.
    """
    declared = case.operation.definition.raw.get("responses", {})
    if response.status_code == 503 and "503" in declared:
        error = response.json()["error"]
        assert (error["code"], error["retriable"]) == ("unavailable", True), error
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [
    not_a_server_error_but_agent_offline,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Bounded so the whole run takes a few minutes of CI time on 2 cores (see the printed figures).
MAX_EXAMPLES = 25
# Operations that destroy or disable what they name get ids of rows seeded only for them, so
# one early "delete server" or "revoke token" does not turn the rest of the run into 404s, and
# the admin's own token is never revoked or rotated under the fuzzer.
DESTRUCTIVE = (
    ("DELETE", "/servers/{serverId}"),
    ("POST", "/servers/{serverId}/deactivate"),
    ("POST", "/servers/{serverId}/agent-key/rotate"),
    ("DELETE", "/projects/{projectId}"),
    ("POST", "/projects/{projectId}/archive"),
    ("POST", "/environments/{environmentId}/archive"),
    ("POST", "/environments/{environmentId}/lock"),
    ("DELETE", "/resources/{resourceId}"),
    ("POST", "/resources/{resourceId}/archive"),
    ("POST", "/deployments/{deploymentId}/cancel"),
    ("POST", "/deploy-tokens/{tokenId}/rotate"),
    ("POST", "/deploy-tokens/{tokenId}/revoke"),
    ("DELETE", "/domain-bindings/{domainBindingId}"),
    ("DELETE", "/environments/{environmentId}/variables/{key}"),
    ("DELETE", "/resources/{resourceId}/variables/{key}"),
    ("DELETE", "/resources/{resourceId}/secrets/{key}"),
    ("DELETE", "/dependency-resources/{dependencyResourceId}"),
    ("DELETE", "/resources/{resourceId}/dependency-bindings/{bindingId}"),
    ("DELETE", "/notification-subscriptions/{subscriptionId}"),
    ("POST", "/operator-work/{workId}/cancel"),
)
# A stream only ends by itself once its deployment is terminal and ``untilTerminal`` is set.
FINITE_STREAM = ("GET", "/deployments/{deploymentId}/events/stream")


@dataclass
class Figures:
    """What the run did, printed for the issue note."""

    operations: int = 0
    cases: int = 0
    # Negative cases include requests without the Authorization header: those are the 401s.
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    # Operations no case got a 2xx from: the run only exercised their refusals.
    never_succeeded: list[str] = field(default_factory=list)


async def _seed(coordinator: Coordinator, admin: str) -> tuple[dict[str, str], dict[str, str]]:
    """Rows every path parameter can name: (ids for ordinary operations, ids for destructive)."""
    kept = await make_world(coordinator, admin, name="kept")
    doomed = await make_world(coordinator, admin, name="doomed")
    finished = await create_deployment(coordinator, admin, kept)
    status, body, _ = await coordinator.call(
        "POST", f"/deployments/{finished}/cancel", token=admin, json={"confirm": finished}
    )
    assert status == 200, body
    live = await create_deployment(coordinator, admin, kept)
    victim = await create_deployment(coordinator, admin, doomed)
    tokens = [
        (await mint_token(coordinator, admin, ["servers:read"], name=f"fuzz-{n}"))["tokenId"]
        for n in range(2)
    ]
    # The path's ``key`` names the environment variable MODE (make_world) and this secret.
    for world in (kept, doomed):
        status, body, _ = await coordinator.call(
            "POST",
            f"/resources/{world.resource_id}/secrets",
            token=admin,
            json={"key": "MODE", "value": "fuzz-secret"},
        )
        assert status in (200, 201), body
    bindings = []
    for world in (kept, doomed):
        status, body, _ = await coordinator.call(
            "POST",
            "/domain-bindings",
            token=admin,
            json={
                "projectId": world.project_id,
                "environmentId": world.environment_id,
                "resourceId": world.resource_id,
                "serverId": world.server_id,
                "domainName": f"{world.resource_id.lower().replace('_', '-')}.example.test",
            },
        )
        assert status == 201, body
        bindings.append(str(body["id"]))
    # Imported databases (no agent needed), each bound to its world's resource, and a plan.
    databases, dependency_bindings = [], []
    for world in (kept, doomed):
        status, body, _ = await coordinator.call(
            "POST",
            "/dependency-resources/import",
            token=admin,
            json={
                "kind": "postgres",
                "projectId": world.project_id,
                "environmentId": world.environment_id,
                "name": "fuzz-db",
                "connectionUrl": "postgres://u:fuzz-pw@db.example.com/app",
            },
        )
        assert status == 201, body
        databases.append(str(body["id"]))
        status, body, _ = await coordinator.call(
            "POST",
            f"/resources/{world.resource_id}/dependency-bindings",
            token=admin,
            json={"dependencyResourceId": databases[-1], "targetName": "DATABASE_URL"},
        )
        assert status == 201, body
        dependency_bindings.append(str(body["id"]))
    status, body, _ = await coordinator.call(
        "POST",
        "/dependency-resources/provisioning/plan",
        token=admin,
        json={
            "create": {
                "kind": "redis",
                "projectId": kept.project_id,
                "environmentId": kept.environment_id,
                "name": "fuzz-cache",
                "serverId": kept.server_id,
            }
        },
    )
    assert status == 201, body
    plan_id = str(body["plan"]["id"])
    subscriptions = []
    for name in ("kept", "doomed"):
        status, body, _ = await coordinator.call(
            "POST",
            "/notification-subscriptions",
            token=admin,
            json={
                "name": name,
                "channel": "webhook",
                "events": ["deployment.failed"],
                "url": "https://hooks.example.test/berth",
                "signingSecret": "fuzz-signing-secret-0123",
            },
        )
        assert status == 201, body
        subscriptions.append(str(body["id"]))
    status, body, _ = await coordinator.call("GET", "/audit-events?limit=1", token=admin)
    assert status == 200, body
    audit_event = str(body["items"][0]["auditEventId"])
    common = {
        "dependencyResourceId": databases[0],
        "bindingId": dependency_bindings[0],
        "planId": plan_id,
        "subscriptionId": subscriptions[0],
        "workId": live,
        "auditEventId": audit_event,
        "category": "audit-rows",
        "domainBindingId": bindings[0],
        "serverId": kept.server_id,
        "projectId": kept.project_id,
        "environmentId": kept.environment_id,
        "otherEnvironmentId": doomed.environment_id,
        "resourceId": kept.resource_id,
        "deploymentId": live,
        "tokenId": str(tokens[0]),
        # No agent here opens terminals or stores archives: these ids name nothing (404 paths).
        "sessionId": "term_missing",
        "key": "MODE",
        "archiveId": "arc_missing",
    }
    destructive = {
        **common,
        "dependencyResourceId": databases[1],
        "bindingId": dependency_bindings[1],
        "subscriptionId": subscriptions[1],
        "workId": victim,
        "domainBindingId": bindings[1],
        "serverId": doomed.server_id,
        "projectId": doomed.project_id,
        "environmentId": doomed.environment_id,
        "resourceId": doomed.resource_id,
        "deploymentId": victim,
        "tokenId": str(tokens[1]),
    }
    for world in (kept, doomed):
        await world.agent.close()
    return common, {**destructive, "finished": finished}


def _run(url: str, admin: str, common: dict[str, str], doomed: dict[str, str]) -> Figures:
    """Fuzz every operation (blocking: runs in a thread while the coordinator serves)."""
    schema = schemathesis.openapi.from_url(url + "/openapi.json", timeout=scaled(10))
    figures = Figures()
    headers = {"Authorization": f"Bearer {admin}"}
    # Every documented operation but the websocket upgrade below and /openapi.json itself
    # (schemathesis never fuzzes the document it loaded): 100 of the 102 today.
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # Err has no ok(): fail loudly
        key = (operation.method.upper(), operation.path)
        if operation.path == "/agent/v1/connect":
            continue  # a websocket upgrade; the link tests cover it
        figures.operations += 1
        names = {p.name for p in operation.path_parameters}
        ids = doomed if key in DESTRUCTIVE else common
        fixed = {n: ids[n] for n in names if n in ids}
        query: dict[str, Any] | None = None
        if key == FINITE_STREAM:
            fixed["deploymentId"] = doomed["finished"]
            query = {"untilTerminal": "true"}
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed, query=query),
            operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=fixed, query=query),
            *(() if query else (operation.as_strategy(GenerationMode.POSITIVE),)),
        )
        aimed = st.builds(_aim, strategy, st.just(ids), st.booleans())
        _fuzz_operation(aimed, url, headers, figures, f"{key[0]} {key[1]}")
    return figures


# Body and query fields that name a seeded row, and the seeded value they get when aimed.
_ID_FIELDS = {
    "projectId": "projectId",
    "environmentId": "environmentId",
    "resourceId": "resourceId",
    "serverId": "serverId",
    "deploymentId": "deploymentId",
    "tokenId": "tokenId",
    "targetEnvironmentId": "otherEnvironmentId",
    "dependencyResourceId": "dependencyResourceId",
}


def _aim(case: Any, ids: dict[str, str], aim: bool) -> Any:
    """For half the cases, point ids in the body/query at seeded rows and fill confirmations.

    Generated ids name nothing, so without this every create, plan and confirmed command would
    only ever be refused with 404 or 400; aimed cases get through to the operation's own logic.
    """
    if not aim:
        return case
    path = case.path_parameters or {}
    for container in (case.body, case.query):
        if not isinstance(container, dict):
            continue
        for name, seeded in _ID_FIELDS.items():
            if name in container and seeded in ids:
                container[name] = path.get(name, ids[seeded])
        confirmation = container.get("confirmation")
        if isinstance(confirmation, dict):
            for name in confirmation:
                if name in path:
                    confirmation[name] = path[name]
            if "resourceSlug" in confirmation:
                confirmation["resourceSlug"] = "web"  # make_world's resource
        if "confirm" in container and "deploymentId" in path:
            container["confirm"] = path["deploymentId"]
    return case


def _fuzz_operation(
    strategy: st.SearchStrategy[Any],
    url: str,
    headers: dict[str, str],
    figures: Figures,
    label: str,
) -> None:
    seen: list[str] = []
    succeeded = False

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        nonlocal succeeded
        figures.cases += 1
        try:
            response = case.call_and_validate(
                base_url=url, headers=headers, checks=CHECKS, timeout=scaled(20)
            )
            figures.statuses[response.status_code] += 1
            succeeded = succeeded or response.status_code < 300
        except FailureGroup as group:
            for failure in group.exceptions:
                seen.append(f"{label}: {failure.title}: {failure.message[:300]}")
            seen.append(f"{label}: reproduce with: {case.as_curl_command()}")

    call_run: Callable[[], None] = run
    call_run()
    figures.failures.extend(dict.fromkeys(seen))
    if not succeeded:
        figures.never_succeeded.append(label)


# Thousands of fuzz requests come from one address with one token: with the default limits most
# would be answered 429 and reach no handler. Limits are off here (0) so the fuzz exercises the
# routes; the limiter itself is covered by tests/unit/coordinator/test_rate_limits.py.
NO_RATE_LIMITS: dict[str, Any] = {
    "rate_limit_token_per_minute": 0,
    "rate_limit_anonymous_per_minute": 0,
    "rate_limit_bootstrap_per_minute": 0,
    "rate_limit_enroll_per_minute": 0,
}


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """An authoritative DNS server for the domain-binding look-ups (no network in CI)."""
    server = DnsServer([f"--host-record=app.{ZONE},203.0.113.10"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def coordinator(
    tmp_path: Path, database_url: str, dns_server: DnsServer
) -> AsyncIterator[Coordinator]:
    """The shared fixture's coordinator, with rate limits switched off (see above)."""
    async with serving(
        tmp_path / "coordinator",
        database_url,
        dns_resolver=dns_server.address,
        **NO_RATE_LIMITS,
    ) as harness:
        yield harness


@pytest.mark.timeout(900)
async def test_schemathesis_finds_no_failures(coordinator: Coordinator, admin_token: str) -> None:
    common, doomed = await _seed(coordinator, admin_token)
    started = time.monotonic()
    figures = await asyncio.to_thread(_run, coordinator.url, admin_token, common, doomed)
    elapsed = time.monotonic() - started
    print(
        f"schemathesis: {figures.operations} operations, {figures.cases} cases, "
        f"{len(figures.failures)} failures in {elapsed:.0f} s; statuses {dict(figures.statuses)}; "
        f"{len(figures.never_succeeded)} operations never answered 2xx: {figures.never_succeeded}"
    )
    assert not figures.failures, "\n".join(figures.failures)
