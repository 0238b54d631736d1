"""A member with per-project grants walks every operation that names a project's rows.

Generated from ``/openapi.json`` (tests/tenancy.py) like the cross-tenant walk. Organization A's
data set (tests/integration/tenant_world.py) lives in one project P; three members of A, each
role ``member`` with a deploy grant on one project, a read grant on another and none on a third,
put P in each of those places in turn:

- deploy grant on P: P's rows answer as the ``member`` role allows (reads 2xx, what the role
  lacks 403);
- read grant on P: reads 2xx, every write 403 (visible, not permitted);
- no grant on P: answered exactly as ids that name nothing (404, never 403), rows never listed.

Each member signs in with a real login session (bearer) on a real coordinator on loopback.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import pytest_asyncio

from coordinator.api.openapi import build_openapi
from coordinator.organizations.roles import ROLE_PERMISSIONS
from tests.dns_server import ZONE, DnsServer
from tests.harness import AgentProcess, Coordinator, scaled
from tests.integration.tenant_world import call_ok, organization_a
from tests.tenancy import (
    PROJECT_ROWS,
    Operation,
    Request,
    Tenant,
    leaked,
    module_database,
    operations,
    request_for,
)

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="module")]

DOCUMENT = build_openapi()
PASSWORD = "grants walk every project route 9"
ORG = "/organizations/org_default"
# A project's rows: PROJECT_ROWS plus the backups and backup policies of its databases and volumes.
GRANTED_ROWS: Final = PROJECT_ROWS | {
    "backupId",
    "volumeBackupId",
    "backupPolicyId",
    "volumeBackupPolicyId",
}
MEMBER: Final = ROLE_PERMISSIONS["member"]
VIEWER: Final = ROLE_PERMISSIONS["viewer"]


def _names_project_rows(operation: Operation) -> bool:
    return request_for(operation, DOCUMENT, {k: f"{k}_x" for k in GRANTED_ROWS}).names_rows


# Every guarded operation with an input naming one of P's rows.
CASES = [
    op
    for op in operations(DOCUMENT)
    if op.permission is not None
    and _names_project_rows(op)
    # Access-failure evidence comes from the edge's log (tests/integration/
    # test_access_failures_e2e.py); this stack has no edge, so P has none to read.
    and op.path != "/resource-access-failures/{requestId}"
]


def _mutates(operation: Operation) -> bool:
    return operation.method != "GET" and not str(operation.permission).endswith(":read")


@dataclass
class Grants:
    """The stack: A's data set in project P, and a session per place P takes."""

    coordinator: Coordinator
    a: Tenant
    sessions: dict[str, str]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def grants(
    tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path
) -> AsyncIterator[Grants]:
    """A coordinator with organization A's data set (P) and members granted around it."""
    root = tmp_path_factory.mktemp("grants")
    dns = DnsServer([f"--host-record=app.{ZONE},203.0.113.10"])
    dns.start()
    coordinator = Coordinator(
        root / "coordinator",
        await module_database(root, migrated_sqlite),
        dns_resolver=dns.address,
        rate_limit_token_per_minute=0,
        rate_limit_anonymous_per_minute=0,
    )
    await coordinator.start()
    agent: AgentProcess | None = None
    try:
        a, agent = await organization_a(coordinator, root, PASSWORD)
        p = a.ids["projectId"]
        x, y = [
            str((await call_ok(coordinator, "POST", "/projects", a.token, json={"name": n}))["id"])
            for n in ("granted-x", "granted-y")
        ]
        places = {
            "deploy": {p: "member", x: "viewer"},
            "read": {x: "member", p: "viewer"},
            "none": {x: "member", y: "viewer"},
        }
        sessions = {
            place: await _member(coordinator, a.token, f"{place}@alpha.example.com", roles)
            for place, roles in places.items()
        }
        yield Grants(coordinator, a, sessions)
    finally:
        if agent is not None:
            await agent.stop()
        await coordinator.close()
        dns.stop()


async def _member(coordinator: Coordinator, admin: str, email: str, roles: dict[str, str]) -> str:
    """Invite ``email`` as a member, accept, grant ``roles``, log in: the session's secret."""
    invitation = await call_ok(
        coordinator, "POST", f"{ORG}/invitations", admin, json={"email": email, "role": "member"}
    )
    status, accepted, _ = await coordinator.call(
        "POST",
        "/organization-invitations/accept",
        json={"token": invitation["token"], "password": PASSWORD, "displayName": email},
    )
    assert status == 201, accepted
    member_id = accepted["member"]["memberId"]
    _ = await call_ok(
        coordinator,
        "POST",
        f"{ORG}/members/{member_id}/project-grants",
        admin,
        json={"projectRoles": roles},
    )
    status, login, _ = await coordinator.call(
        "POST", "/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert status == 201, login
    return str(login["token"])


async def _send(
    coordinator: Coordinator, operation: Operation, request: Request, secret: str
) -> tuple[int, Any]:
    """The answer; for an event stream only its status (a stream that opened never ends)."""
    assert coordinator.http is not None
    try:
        async with asyncio.timeout(scaled(15)):
            if not operation.streams:
                status, body, _ = await coordinator.call(
                    request.method, request.path, token=secret, json=request.body
                )
                return status, body
            async with coordinator.http.request(
                request.method,
                coordinator.url + request.path,
                headers={"Authorization": f"Bearer {secret}"},
            ) as response:
                if response.status < 300:
                    return response.status, None
                return response.status, await response.json(content_type=None)
    except TimeoutError:
        pytest.fail(f"{operation.label}: no answer within the deadline")


def _check_granted(operation: Operation, status: int, body: Any, grant: frozenset[str]) -> None:
    """What a member whose grant on P is ``grant`` must be answered on P's rows."""
    declared = operation.definition.get("responses", {})
    if status in (503, 504) and str(status) in declared:
        return  # past the lookup: the route wants the (disconnected) fake agent
    assert status < 500, (operation.label, status, body)
    if operation.permission not in MEMBER or operation.permission not in grant:
        assert status == 403, (operation.label, status, body)
        assert body["error"]["code"] == "forbidden", body
        return
    assert status not in (401, 403, 404), (operation.label, status, body)
    if operation.method == "GET":
        assert status < 300, (operation.label, status, body)


@pytest.mark.parametrize(
    "operation",
    # A write the grant allows would change A's data set, which every case shares: the member
    # role's writes on a deploy-granted project are proven by tests/unit/coordinator/
    # test_organizations_api.py (deploy, rename), not here.
    [op for op in CASES if not (_mutates(op) and op.permission in MEMBER)],
    ids=lambda op: op.label,
)
async def test_a_deploy_grant_answers_as_the_member_role_allows(
    grants: Grants, operation: Operation
) -> None:
    request = request_for(operation, DOCUMENT, grants.a.ids)
    status, body = await _send(grants.coordinator, operation, request, grants.sessions["deploy"])
    _check_granted(operation, status, body, MEMBER)


@pytest.mark.parametrize("operation", CASES, ids=lambda op: op.label)
async def test_a_read_grant_reads_and_every_write_is_403(
    grants: Grants, operation: Operation
) -> None:
    request = request_for(operation, DOCUMENT, grants.a.ids)
    status, body = await _send(grants.coordinator, operation, request, grants.sessions["read"])
    _check_granted(operation, status, body, VIEWER)


@pytest.mark.parametrize("operation", CASES, ids=lambda op: op.label)
async def test_without_a_grant_the_project_s_rows_look_absent(
    grants: Grants, operation: Operation
) -> None:
    """P's rows are answered exactly as ids of the same shape that name nothing."""
    a = grants.a
    nothing = {**a.ids, **{k: f"{k[:3].lower()}_{'0' * 26}" for k in GRANTED_ROWS}}
    answers = []
    for ids in (a.ids, nothing):
        request = request_for(operation, DOCUMENT, ids)
        status, body = await _send(grants.coordinator, operation, request, grants.sessions["none"])
        assert status < 500, (request, body)
        answers.append((status, body["error"]["code"] if status >= 400 else None, body))
    (status, code, body), (nothing_status, nothing_code, _) = answers
    assert status != 403 or nothing_status == 403, f"403 says P's row exists: {body}"
    assert (status, code) == (nothing_status, nothing_code), (operation.label, body)
    if status < 300:
        request = request_for(operation, DOCUMENT, a.ids)
        hidden = {k: v for k, v in a.ids.items() if k in GRANTED_ROWS}
        assert not leaked(body, hidden, request), (request, body)


# The operator work ledger's kinds that live in a project (deliveries, maintenance runs and
# wildcard orders belong to the organization); the walk above aims ``workId`` at a deployment.
PROJECT_WORK: Final = ("certificateWorkId", "backupWorkId", "restoreWorkId", "verificationWorkId")
WORK_CASES = [
    pytest.param(op, kind, id=f"{op.label}-{kind}")
    for op in CASES
    if "workId" in op.path_names
    for kind in PROJECT_WORK
]


@pytest.mark.parametrize(("operation", "kind"), WORK_CASES)
async def test_project_work_of_every_kind_follows_the_grant(
    grants: Grants, operation: Operation, kind: str
) -> None:
    """Each kind's source applies the grant: a read grant reads it, no grant finds nothing
    (404). Acting on work needs ``operator-work:write``, which the ``member`` role lacks (403)."""
    request = request_for(operation, DOCUMENT, {**grants.a.ids, "workId": grants.a.ids[kind]})
    status, body = await _send(grants.coordinator, operation, request, grants.sessions["read"])
    _check_granted(operation, status, body, VIEWER)
    status, body = await _send(grants.coordinator, operation, request, grants.sessions["none"])
    # What the role lacks (operator-work:write) is refused whatever the id names.
    assert status == (404 if operation.permission in MEMBER else 403), (request, body)
