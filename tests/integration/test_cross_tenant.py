"""Organization B's admin tries every id of organization A on every served operation: 404.

Generated from ``/openapi.json`` (tests/tenancy.py), so a new route is walked without being
listed. Organization A gets a full data set through the API, with a real enrolled agent (its
host shell backs a real terminal session) and a fake-agent server for deployments; organization
B gets its own admin. One stack is shared by the module; each operation is its own case.
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from coordinator.accounts import passwords, session_store
from coordinator.api.openapi import build_openapi
from tests.dns_server import ZONE, DnsServer
from tests.harness import AgentProcess, Coordinator, scaled
from tests.integration.tenant_world import organization_a
from tests.tenancy import (
    ID_FIELDS,
    ID_LIST_FIELDS,
    PROJECT_ROWS,
    Operation,
    Tenant,
    leaked,
    module_database,
    operations,
    other_organization,
    path_key,
    request_for,
    resolve,
)

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="module")]

DOCUMENT = build_openapi()
PASSWORD = "tenancy walks every route 42"
# The kinds of ids organization A's data set provides (the keys of ``Tenant.ids``).
ID_KINDS = {
    "organizationId",
    "serverId",
    "projectId",
    "environmentId",
    "otherEnvironmentId",
    "resourceId",
    "deploymentId",
    "domainBindingId",
    "certificateId",
    "storageVolumeId",
    "attachmentId",
    "dependencyResourceId",
    "bindingId",
    "planId",
    "taskId",
    "runId",
    "subscriptionId",
    "auditEventId",
    "workId",
    "tokenId",
    "terminalSessionId",
    "accountSessionId",
}


def _names_rows(operation: Operation) -> bool:
    return request_for(operation, DOCUMENT, {k: f"{k}_x" for k in ID_KINDS}).names_rows


# Path parameters that name no row of A's data set, and why that is fine.
NOT_ROWS = {
    "key": "a variable or secret key of the resource/environment named beside it (MODE)",
    "category": "a retention category word, the same for every organization",
    "requestId": "access-failure evidence needs the edge (test_access_failures_e2e.py)",
}


# Body and query fields named like ids that name no row of an organization, and why.
NOT_ID_FIELDS = {
    "destinationId": "Appaloft's destination reference: stored as given, Berth has no such rows",
    "ruleId": "a threshold rule's name within its policy, chosen by the caller",
    "userId": "DELETE /account's confirmation of the caller's own user id",
    "accessKeyId": "an S3 bucket's access key id (a credential at the bucket), not a Berth row",
}


async def test_every_id_field_is_aimed_at_a_row_of_organization_a(
    stack: tuple[Coordinator, Tenant, Tenant],
) -> None:
    """A body or query field naming a new kind of row fails here until the generator aims it
    (tests/tenancy.py ID_FIELDS) at a row A's data set has."""
    _, a, _ = stack
    found: set[str] = set()

    def walk(schema: dict[str, Any], depth: int = 0) -> None:
        schema = resolve(schema, DOCUMENT)
        if depth > 6:
            return
        for name, item in schema.get("properties", {}).items():
            if name.endswith(("Id", "Ids")):
                found.add(name)
            walk(item, depth + 1)
        for union in ("anyOf", "oneOf", "allOf"):
            for item in schema.get(union, []):
                walk(item, depth + 1)
        if "items" in schema:
            walk(schema["items"], depth + 1)

    for op in CASES:
        if op.body_schema is not None:
            walk(op.body_schema)
        found |= {n for n in op.query_names if n.endswith(("Id", "Ids"))}
    aimed = {**ID_FIELDS, **ID_LIST_FIELDS}
    unaimed = sorted(
        n for n in found if n not in NOT_ID_FIELDS and (n not in aimed or aimed[n] not in a.ids)
    )
    assert not unaimed, unaimed


async def test_every_path_parameter_names_a_row_of_organization_a(
    stack: tuple[Coordinator, Tenant, Tenant],
) -> None:
    """A route with a new kind of id fails here until A's data set has one: otherwise B's 404
    for it would only say that a made-up id names nothing."""
    _, a, _ = stack
    missing = {
        f"{op.label}: {name}"
        for op in CASES
        for name in op.path_names
        if path_key(op, name) not in a.ids and name not in NOT_ROWS
    }
    assert not missing, sorted(missing)


# Public operations check no principal; everything else is walked. Mutations that name no row
# (e.g. POST /projects with a fresh name) cannot reach organization A and are not sent.
CASES = [
    op
    for op in operations(DOCUMENT)
    if op.permission is not None and (op.method == "GET" or _names_rows(op))
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path
) -> AsyncIterator[tuple[Coordinator, Tenant, Tenant]]:
    """A coordinator with organization A's data set (and agents) and organization B's admin."""
    root = tmp_path_factory.mktemp("tenancy")
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
        assert set(a.ids) >= ID_KINDS
        b = await other_organization("Beta", await passwords.hash_password(PASSWORD))
        status, login, _ = await coordinator.call(
            "POST", "/auth/login", json={"email": b.email, "password": PASSWORD}
        )
        assert status == 201, login
        b.ids["session"] = str(login["token"])
        b.ids["csrf"] = str(login["csrfToken"])
        yield coordinator, a, b
    finally:
        if agent is not None:
            await agent.stop()
        await coordinator.close()
        dns.stop()


# What B may be answered when it names A's rows: "no such row" or a refusal of the input.
# 401: a call only a login session may make (switching organizations) refused to a token,
# whatever the ids (so it shows nothing about them).
REFUSED = {400, 401, 404}


def _browser(coordinator: Coordinator, b: Tenant) -> dict[str, str]:
    """What the console's pages send: the session cookie, the CSRF header, our own origin."""
    return {
        "Cookie": f"{session_store.SESSION_COOKIE}={b.ids['session']}",
        session_store.CSRF_HEADER: b.ids["csrf"],
        "Origin": coordinator.url,
    }


@pytest.mark.parametrize(
    ("operation", "credential"),
    [
        pytest.param(op, credential, id=f"{op.label}-{credential}")
        for op in CASES
        for credential in ("token", "session", "cookie")
        # Logging out would end the session the other cases use (the token case covers it).
        if not (credential != "token" and op.path == "/auth/logout")
    ],
)
async def test_another_organizations_ids_are_404_and_its_rows_never_listed(
    stack: tuple[Coordinator, Tenant, Tenant], operation: Operation, credential: str
) -> None:
    """B's admin, with its API token, with a login session (bearer) and with the browser's
    credentials (the session cookie and CSRF header), so a hole only in one path is found."""
    coordinator, a, b = stack
    request = request_for(operation, DOCUMENT, a.ids)
    secret = {"token": b.token, "session": b.ids["session"], "cookie": None}[credential]
    headers = _browser(coordinator, b) if credential == "cookie" else None
    try:
        async with asyncio.timeout(scaled(15)):
            status, body, _ = await coordinator.call(
                request.method, request.path, token=secret, json=request.body, headers=headers
            )
    except TimeoutError:
        pytest.fail(f"{operation.label}: organization B got an open stream on A's ids")
    assert status < 500, (request, body)
    if credential == "cookie":
        assert status != 401, f"the cookie did not authenticate: {body}"
    assert status != 403, f"403 leaks that A's row exists: {request} {body}"
    if request.named_in_path or (request.names_rows and operation.method != "GET"):
        assert status in REFUSED, (request, status, body)
    if status < 300:
        assert not leaked(body, a.ids, request), (request, body)


async def test_the_walks_cookie_is_a_working_browser_session(
    stack: tuple[Coordinator, Tenant, Tenant],
) -> None:
    """The cookie cases above act as B (not as nobody), and their mutations pass the CSRF
    check: without the header the same mutation is refused before any lookup."""
    coordinator, _, b = stack
    headers = _browser(coordinator, b)
    status, context, _ = await coordinator.call(
        "GET", "/organizations/current-context", headers=headers
    )
    assert status == 200, context
    assert context["currentOrganization"]["organizationId"] == b.organization_id, context
    without_csrf = {k: v for k, v in headers.items() if k != session_store.CSRF_HEADER}
    status, body, _ = await coordinator.call(
        "POST", "/projects", json={"name": "never-made"}, headers=without_csrf
    )
    assert status == 403, body
    assert body["error"]["details"] == {"header": session_store.CSRF_HEADER}, body


# Ids of the right shape that name nothing: what a caller that sees nothing gets for them.
NOTHING = {k: f"{k[:3].lower()}_00000000000000000000000000" for k in ID_KINDS}


@pytest.mark.parametrize("operation", CASES, ids=lambda op: op.label)
async def test_a_token_scoped_to_another_project_sees_none_of_these_rows(
    stack: tuple[Coordinator, Tenant, Tenant], operation: Operation
) -> None:
    """Same organization, every permission, ``projectIds`` naming another project: A's rows
    are answered exactly as ids that name nothing (a refusal that never depends on them)."""
    coordinator, a, _ = stack
    token = a.ids["projectScopedToken"]
    named = {**NOTHING, **{k: v for k, v in a.ids.items() if k in PROJECT_ROWS}}
    request = request_for(operation, DOCUMENT, named)
    if not request.names_rows:
        return  # nothing of A's project is named: the lists are checked below
    answers = []
    for sent in (request, request_for(operation, DOCUMENT, NOTHING)):
        try:
            async with asyncio.timeout(scaled(15)):
                status, body, _ = await coordinator.call(
                    sent.method, sent.path, token=token, json=sent.body
                )
        except TimeoutError:
            pytest.fail(f"{operation.label}: a stream opened on rows outside the token's scope")
        assert status < 500, (sent, body)
        answers.append((status, body["error"]["code"] if status >= 400 else None, body))
    (status, code, body), (nothing_status, nothing_code, _) = answers
    if request.named_in_path or operation.method != "GET":
        assert status in (*REFUSED, nothing_status), (request, body)
    assert (status, code) == (nothing_status, nothing_code), (request, body)
    if status < 300:
        scoped_out = {k: v for k, v in a.ids.items() if k in PROJECT_ROWS}
        assert not leaked(body, scoped_out, request), (request, body)


@pytest.mark.parametrize(
    "operation",
    [
        op
        for op in CASES
        if op.method == "GET"
        and op.path_names
        and not op.streams
        # Access-failure evidence comes from the edge's log (tests/integration/
        # test_access_failures_e2e.py); this stack has no edge, so A has none to read.
        and op.path != "/resource-access-failures/{requestId}"
    ],
    ids=lambda op: op.label,
)
async def test_the_same_reads_answer_organization_a(
    stack: tuple[Coordinator, Tenant, Tenant], operation: Operation
) -> None:
    """The ids are real: A's admin sending the very request B was refused gets its rows."""
    coordinator, a, _ = stack
    request = request_for(operation, DOCUMENT, a.ids)
    status, body, _ = await coordinator.call(request.method, request.path, token=a.token)
    declared = operation.definition.get("responses", {})
    if status in (503, 504) and str(status) in declared:
        return  # the route got past the lookup and wants the (disconnected) fake agent
    assert status < 300, (request, body)


WORK_KINDS = (
    "workId",
    "deliveryWorkId",
    "maintenanceWorkId",
    "certificateWorkId",
    "wildcardWorkId",
    "backupWorkId",
    "restoreWorkId",
    "verificationWorkId",
)


@pytest.mark.parametrize(
    ("operation", "kind"),
    [
        pytest.param(op, kind, id=f"{op.label}-{kind}")
        for op in CASES
        if "workId" in op.path_names
        for kind in WORK_KINDS[1:]
    ],
)
async def test_another_organizations_work_of_every_kind_is_404(
    stack: tuple[Coordinator, Tenant, Tenant], operation: Operation, kind: str
) -> None:
    """The ledger dispatches a work id by its kind: each kind's source scopes its rows."""
    coordinator, a, b = stack
    request = request_for(operation, DOCUMENT, {**a.ids, "workId": a.ids[kind]})
    status, body, _ = await coordinator.call(
        request.method, request.path, token=b.token, json=request.body
    )
    assert status == 404, (request, body)


@pytest.mark.parametrize("kind", WORK_KINDS)
async def test_organization_a_sees_its_work_of_every_kind(
    stack: tuple[Coordinator, Tenant, Tenant], kind: str
) -> None:
    coordinator, a, _ = stack
    status, body, _ = await coordinator.call("GET", f"/operator-work/{a.ids[kind]}", token=a.token)
    assert status == 200, body


async def test_terminal_attach_with_another_organizations_session_is_refused(
    stack: tuple[Coordinator, Tenant, Tenant],
) -> None:
    """The websocket checks its ticket: B's credential on A's session id gets no terminal."""
    coordinator, a, b = stack
    assert coordinator.http is not None
    path = f"/terminal-sessions/{a.ids['terminalSessionId']}/attach"
    for ticket in (b.token, "tkt_" + "0" * 40):
        ws = await coordinator.http.ws_connect(
            coordinator.url + path,
            protocols=("berth.terminal.v1",),
            headers={"Authorization": f"Bearer {b.token}"},
        )
        try:
            await ws.send_json({"type": "auth", "ticket": ticket})
            frame = await ws.receive_json(timeout=scaled(10))
            assert frame["type"] == "error", frame
            assert frame["error"]["code"] in ("unauthorized", "not_found"), frame
        finally:
            await ws.close()
    # B cannot mint a ticket for A's session either (404, never a ticket).
    status, body, _ = await coordinator.call(
        "POST",
        f"/terminal-sessions/{a.ids['terminalSessionId']}/tickets",
        token=b.token,
        json={},
    )
    assert status == 404, body
